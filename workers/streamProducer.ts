import type { MessagePort } from 'node:worker_threads';
import { streamIterator } from '../packages/core/src/bus/streamIterator.js';
import { serializeError } from '../packages/core/src/errors/serialize.js';
import type { HandlerFn } from '../packages/core/src/handler/handle.js';
import { toColumns } from '../packages/core/src/pool/itemColumns.js';
import type { StreamChunk, StreamEnd, TaskMessage, TaskOutcome } from '../packages/core/src/pool/protocol.js';
import { type CancelFlagsView, FinishResult } from '../packages/core/src/shared/CancelFlags.js';
import type { MetricsView } from '../packages/core/src/shared/MetricsView.js';
import type { StreamCreditsView } from '../packages/core/src/shared/StreamCredits.js';
import type { ThreadContext } from './ThreadContext.js';

/** What a thread's stream tasks use of the thread (see handlerHost.ts). */
export interface StreamHost {
  /** The run port: chunks go to the main thread on it. */
  readonly port: MessagePort;
  readonly credits: StreamCreditsView;
  readonly cancelFlags: CancelFlagsView;
  readonly metrics: MetricsView;
  readonly stripe: number;
  readonly threadId: number;
  /** Why an item cannot cross to the main thread (structured clone, or too deep), or undefined. */
  readonly cloneFailure: (value: unknown) => unknown;
}

const NO_ITEMS: readonly unknown[] = [];

/** The largest chunk: past this, one message more per 256 items costs nothing measurable. */
const MAX_CHUNK = 256;
/** An item waits at most about this long (ms) for its chunk to fill. */
const FLUSH_MS = 1;

/**
 * Runs a streaming query's task: the handler's generator, its items sent to the main thread in chunks (see
 * StreamRunner.ts). Answers like `runTask` — counted here unless its caller gave up first — with the
 * thread's id as the value: the items and the end went on the run port.
 */
export async function runStreamTask(
  host: StreamHost,
  task: TaskMessage,
  handler: HandlerFn<never>,
  ctx: ThreadContext,
): Promise<TaskOutcome> {
  const started = performance.now();
  const failed = await produce(host, task, handler, ctx);
  ctx.finish();
  // DONE whether recorded or not (see runTask): the end is on its way and stands.
  // A stream is never claimed for termination (piscina terminates a cancellable one), so `done` or `cancelled`.
  const counted = host.cancelFlags.finish(task.c, task.g, failed) === FinishResult.done && task.s >= 0;
  if (counted) host.metrics.record(task.s, host.stripe, (performance.now() - started) * 1000, failed);
  return counted ? { ok: true, v: host.threadId, r: true } : { ok: true, v: host.threadId };
}

/**
 * The pump. Chunks are sized adaptively: the first item goes alone, so the consumer has it at once; each
 * full chunk doubles the next one's size, up to {@link MAX_CHUNK}, so a fast generator pays the per-message
 * cost once per few hundred items. An item does not wait long for its chunk to fill: a chunk is sent once
 * {@link FLUSH_MS} has passed since its first item was asked for (checked as items come — so a generator
 * slower than that sends every item as it comes — and by a timer while the generator awaits something),
 * when the credits run out (the consumer needs these items to hand credits back), and at the end. What
 * batching cannot help: a generator that computes synchronously between two yields holds the items before
 * that computation until it yields again (the thread cannot send while it runs).
 *
 * Credits: the producer takes every credit of its word at once and counts them down locally; with none left
 * it sends what it has and waits on the word (`Atomics.waitAsync`: the thread's event loop goes on). The
 * generator is only resumed holding a credit, so it is never more than the credits it was given ahead.
 *
 * Stopping: the cancel flag (the consumer stopped, the caller aborted, a timeout) is read at every chunk and
 * every wait; the generator is then ended with `return()`, at its `yield`, so its `finally` runs. One that
 * never yields again is the pool's to terminate after the grace period. Returns whether the stream failed.
 */
async function produce(
  host: StreamHost,
  task: TaskMessage,
  handler: HandlerFn<never>,
  ctx: ThreadContext,
): Promise<boolean> {
  const slot = task.c;
  const gen = task.g;
  const cancelled = (): boolean => host.cancelFlags.isCancelled(slot, gen);
  let chunk: unknown[] = [];
  let target = 1;
  let chunkStarted = 0;
  /** The last clock reading: one per item (taken after it came), standing for when the next was asked for. */
  let clock = performance.now();
  let credits = 0;
  let timer: NodeJS.Timeout | undefined;
  let end: StreamEnd = { ok: true };
  /** End the generator with `return()`: stopped, or it yielded an item that cannot cross. */
  let stop = false;

  const send = (last?: StreamEnd): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    const items = chunk;
    chunk = [];
    // Rows of one shape cross as columns (itemColumns.ts); any other items as they are.
    const cols = toColumns(items);
    const body: StreamChunk =
      cols === undefined ? { sc: slot, g: gen, v: items } : { sc: slot, g: gen, v: NO_ITEMS, cols };
    const message: StreamChunk = last === undefined ? body : { ...body, end: last };
    try {
      host.port.postMessage(message);
    } catch (err) {
      // The items were checked one by one; should the post fail anyway, the stream fails, not the thread.
      stop = true;
      end = { ok: false, k: 'result', e: serializeError(err) };
      if (last !== undefined) host.port.postMessage({ sc: slot, g: gen, v: [], end });
    }
  };
  const flushStale = (): void => {
    timer = undefined;
    if (chunk.length > 0) send();
  };

  let iterator: AsyncIterator<unknown> | undefined;
  try {
    iterator = streamIterator(handler(task.i as never, ctx));
    for (;;) {
      if (credits <= 0) {
        credits = host.credits.take(slot);
        while (credits <= 0 && !cancelled()) {
          if (chunk.length > 0) send();
          await host.credits.wait(slot);
          credits = host.credits.take(slot);
          clock = performance.now();
        }
        if (cancelled()) {
          stop = true;
          break;
        }
      }
      const asked = clock;
      const step = await iterator.next();
      const now = performance.now();
      clock = now;
      if (step.done === true) break;
      const value = step.value;
      const refused = host.cloneFailure(value);
      if (refused !== undefined) {
        end = { ok: false, k: 'result', e: serializeError(refused) };
        stop = true;
        break;
      }
      if (chunk.length === 0) chunkStarted = asked;
      chunk.push(value);
      credits--;
      if (chunk.length >= target) {
        send();
        if (target < MAX_CHUNK) target *= 2;
      } else if (now - chunkStarted >= FLUSH_MS) send();
      else timer ??= setTimeout(flushStale, FLUSH_MS);
      if (stop) break;
      if (chunk.length === 0 && cancelled()) {
        stop = true;
        break;
      }
    }
  } catch (err) {
    end = { ok: false, k: 'handler', e: serializeError(err) };
  }
  if (stop && iterator !== undefined) {
    try {
      await iterator.return?.();
    } catch {
      // Ignored: a stopped stream's caller has moved on, and a refused item is what its consumer is told.
    }
  }
  // Items of a stream whose consumer is gone are not sent; the end always is (the main thread waits for it).
  if (cancelled()) chunk = [];
  send(end);
  return !end.ok;
}
