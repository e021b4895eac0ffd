/**
 * The column-wise wire form of a batch of tasks and of its outcomes (see {@link BatchMessage}): built on one
 * side, read on the other. Both directions keep to arrays of values and typed arrays, which structured clone
 * copies without writing a property name per task.
 * @internal
 */
import type { SerializedError } from '../errors/serialize.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { BatchMessage, BatchOutcome, FailureKind, TaskMessage, TaskOutcome } from './protocol.js';

const noMetadata: Metadata = Object.freeze({});
/** Words per task in `w`: handler index, cancel slot, generation, nesting depth (with the TERMINABLE bit). */
const WORDS = 4;
/** Set in a task's depth word when its thread may be terminated over it (`a: 1`). */
const TERMINABLE = 1 << 30;

function isEmpty(metadata: Metadata): boolean {
  for (const _ in metadata) return false;
  return true;
}

/** Packs tasks (none of them a probe) into one message. */
export function encodeBatch(tasks: readonly TaskMessage[], hold = 0): BatchMessage {
  const h: BatchMessage['h'][number][] = [];
  const w = new Int32Array(tasks.length * WORDS);
  const i: unknown[] = new Array(tasks.length);
  const md: (Metadata | 0)[] = new Array(tasks.length);
  let last = -1;
  for (let t = 0; t < tasks.length; t++) {
    const task = tasks[t] as TaskMessage;
    // Batches are mostly calls of one handler: the previous task's handler is tried first.
    let hi = last >= 0 && sameHandler(h[last] as (typeof h)[number], task) ? last : -1;
    if (hi < 0) {
      hi = h.findIndex((handler) => sameHandler(handler, task));
      if (hi < 0) {
        const k = task.k ?? 'command';
        const handler: BatchMessage['h'][number] =
          task.sb === undefined
            ? [task.m, task.x, task.n, k, task.s]
            : [task.m, task.x, task.n, k, task.s, task.sb];
        hi = h.push(handler) - 1;
      }
    }
    last = hi;
    w[t * WORDS] = hi;
    w[t * WORDS + 1] = task.c;
    w[t * WORDS + 2] = task.g;
    w[t * WORDS + 3] = task.a === 1 ? task.d | TERMINABLE : task.d;
    i[t] = task.i;
    md[t] = isEmpty(task.md) ? 0 : task.md;
  }
  return hold > 0 ? { h, w, i, md, hold } : { h, w, i, md };
}

function sameHandler(handler: BatchMessage['h'][number], task: TaskMessage): boolean {
  return (
    handler[0] === task.m &&
    handler[1] === task.x &&
    handler[2] === task.n &&
    handler[3] === task.k &&
    handler[4] === task.s &&
    handler[5] === task.sb
  );
}

/** The tasks of a batch, as single tasks are given. */
export function decodeBatch(batch: BatchMessage): TaskMessage[] {
  const tasks: TaskMessage[] = new Array(batch.i.length);
  for (let t = 0; t < tasks.length; t++) {
    const [m, x, n, k, s, sb] = batch.h[batch.w[t * WORDS] as number] as BatchMessage['h'][number];
    const metadata = batch.md[t];
    const md = metadata === 0 || metadata === undefined ? noMetadata : metadata;
    const c = batch.w[t * WORDS + 1] as number;
    const g = batch.w[t * WORDS + 2] as number;
    const depthWord = batch.w[t * WORDS + 3] as number;
    const d = depthWord & ~TERMINABLE;
    const a = (depthWord & TERMINABLE) === 0 ? 0 : 1;
    tasks[t] =
      sb === undefined
        ? { m, x, n, k, i: batch.i[t], md, c, g, s, d, a }
        : { m, x, n, k, i: batch.i[t], md, c, g, s, d, a, sb };
  }
  return tasks;
}

// Flags of an outcome: bit 0 ok, bit 1 counted by the thread (`r`), bits 2-3 the failure kind, bit 4 sent
// already (an early outcome, see EarlyOutcomes: the batch's answer carries nothing for it), bit 5 a value
// sent as columns (`cl`).
const OK = 1;
const COUNTED = 2;
const SENT = 16;
const COLUMNS = 32;
const kinds: readonly FailureKind[] = ['handler', 'load', 'cancelled', 'result'];

/**
 * Packs the outcomes of tasks `base` … `to` (exclusive) of `outcomes`, those before `from` marked as sent
 * early, without their values. A batch's answer is `(outcomes, sent, n, 0)`; an early chunk `(outcomes, a, b, a)`.
 */
export function encodeOutcomes(
  outcomes: readonly TaskOutcome[],
  from = 0,
  to = outcomes.length,
  base = from,
): BatchOutcome {
  // Pushed, not preallocated: a packed array of small integers clones as a plain list.
  const f: number[] = [];
  const v: unknown[] = [];
  for (let t = 0; t < from - base; t++) {
    f.push(SENT);
    v.push(undefined);
  }
  for (let i = from; i < to; i++) {
    const outcome = outcomes[i] as TaskOutcome;
    f.push(outcomeFlags(outcome));
    v.push(outcomeValue(outcome));
  }
  return { f, v };
}

/** The flags `outcome` is packed with: ok, counted by the thread, the failure kind, a value as columns. */
export function outcomeFlags(outcome: TaskOutcome): number {
  const counted = outcome.r === true ? COUNTED : 0;
  if (!outcome.ok) return (kinds.indexOf(outcome.k) << 2) | counted;
  return outcome.cl === 1 ? OK | COLUMNS | counted : OK | counted;
}

/** What `outcome` is packed with beside its flags: its value, or its error. */
export function outcomeValue(outcome: TaskOutcome): unknown {
  return outcome.ok ? outcome.v : outcome.e;
}

/** Whether outcome `t` of a batch's answer was sent early instead (see EarlyOutcomes). */
export function sentEarly(batch: BatchOutcome, t: number): boolean {
  return ((batch.f[t] as number) & SENT) !== 0;
}

/** Outcome `t` of a batch. */
export function outcomeAt(batch: BatchOutcome, t: number): TaskOutcome {
  const flags = batch.f[t] as number;
  const value = batch.v[t];
  if ((flags & OK) !== 0) {
    if ((flags & COLUMNS) !== 0) {
      return (flags & COUNTED) !== 0 ? { ok: true, v: value, r: true, cl: 1 } : { ok: true, v: value, cl: 1 };
    }
    return (flags & COUNTED) !== 0 ? { ok: true, v: value, r: true } : { ok: true, v: value };
  }
  const k = kinds[flags >> 2] as FailureKind;
  const e = value as SerializedError;
  return (flags & COUNTED) !== 0 ? { ok: false, k, e, r: true } : { ok: false, k, e };
}
