import type { StreamProducer, StreamSink } from '../bus/StreamSink.js';
import { CqrsError } from '../errors/CqrsError.js';
import { deserializeError } from '../errors/serialize.js';
import type { CancelFlags } from '../shared/CancelFlags.js';
import { CancelResult } from '../shared/CancelFlags.js';
import type { StreamCredits } from '../shared/StreamCredits.js';
import { abortErrorFor } from '../util/abortError.js';
import { abortReason, onAbort } from '../util/callAbort.js';
import { fromColumns } from './itemColumns.js';
import { KillSwitch } from './KillSwitch.js';
import type { StreamChunk, StreamEnd, TaskMessage, TaskOutcome } from './protocol.js';
import type { PoolTask } from './WorkerPool.js';
import { labelOf, threadFailure, unwrap } from './WorkerPool.js';

/** What a {@link StreamRunner} needs of its pool. @internal */
export interface StreamPool {
  readonly cancelFlags: CancelFlags;
  readonly credits: StreamCredits;
  /** The pool's `cancelGraceMs`. */
  readonly cancelGraceMs: number;
  /** Posts a task (to piscina, or to its origin thread), counted for `close()`. */
  post(
    message: TaskMessage,
    kill: KillSwitch | undefined,
    originThread: number | undefined,
  ): Promise<TaskOutcome>;
  /** The thread counted the call (see WorkerPool.settleCount). */
  settleCount(outcome: TaskOutcome, task: PoolTask): void;
  /** The thread died under the call (see WorkerPool.settleLostCount). */
  settleLostCount(slot: number, task: PoolTask): void;
  /** True while the thread's run port is open. */
  threadAlive(threadId: number): boolean;
  /** Keeps the process alive while a last chunk is due after the answer (see ThreadLinks.hold). */
  hold(): void;
  release(): void;
}

/** A stream in a thread, as chunks reach it: keyed by cancel slot and generation. */
interface OpenStream {
  readonly push: (items: readonly unknown[]) => void;
  readonly end: (end: StreamEnd) => void;
  /** The thread that ran it, once piscina's answer says so and while its last chunk is still awaited. */
  awaitedFrom: number;
  readonly lost: () => void;
}

// Generations are below 2^26 (CancelFlags.ts): slot and generation make one safe integer key.
const GENERATIONS = 2 ** 26;

/**
 * The main thread's side of streaming queries in pool threads. A stream's task has its own cancel slot,
 * travels alone in its message, and has its thread terminated (by piscina) after the grace period when it
 * does not stop; its items come back as chunks on the thread's run port, each pushed into the stream's
 * buffer as it arrives. The producer in the thread takes credits from its slot's word (StreamCredits.ts)
 * and waits when it has none; the buffer hands credits back as the consumer takes items.
 *
 * The call settles once the thread has answered *and* its last chunk (which says how the generator ended)
 * has arrived: they come on two ports, in either order. A consumer that stops sets the cancel flag (the
 * generator is ended at its next `yield`, and `ctx.signal` aborts) and waits for the thread, which is
 * terminated after the grace period if its generator does not stop; the call then succeeds. An abort (the
 * caller's signal, a timeout) settles the call at once, as for any call, and stops the thread the same way.
 * @internal
 */
export class StreamRunner {
  private readonly open = new Map<number, OpenStream>();

  constructor(private readonly pool: StreamPool) {}

  /** A chunk from a thread's run port. */
  deliver(chunk: StreamChunk): void {
    const stream = this.open.get(chunk.sc * GENERATIONS + chunk.g);
    if (stream === undefined) return;
    const items = chunk.cols === undefined ? chunk.v : fromColumns(chunk.cols);
    if (items.length > 0) stream.push(items);
    if (chunk.end !== undefined) stream.end(chunk.end);
  }

  /** A thread's run port closed: streams still waiting for their last chunk from it will not get it. */
  threadGone(threadId: number): void {
    for (const stream of [...this.open.values()]) if (stream.awaitedFrom === threadId) stream.lost();
  }

  /** Runs `message` (a stream task in cancel slot `message.c`) with `sink` as the place its items go. */
  run(task: PoolTask, sink: StreamSink, message: TaskMessage): Promise<void> {
    const { cancelFlags, credits } = this.pool;
    const slot = message.c;
    const gen = message.g;
    const key = slot * GENERATIONS + gen;
    const label = labelOf(task);
    // A nested stream runs on the thread that awaits it, which is never terminated.
    const kill = task.originThread === undefined ? new KillSwitch() : undefined;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      /** The consumer stopped: whatever the thread ends with, the call succeeds. */
      let stopped = false;
      /** The thread is done with the slot (answered or died): its words may serve another task now. */
      let released = false;
      let woken = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let outcome: TaskOutcome | undefined;
      let end: StreamEnd | undefined;

      const settle = (err: unknown): void => {
        if (settled) return;
        settled = true;
        this.open.delete(key);
        if (stream.awaitedFrom >= 0) this.pool.release();
        if (err === undefined || stopped) resolve();
        else reject(err);
      };
      /** Both halves are in (or the answer alone says no chunk will come): the call's outcome. */
      const conclude = (): void => {
        if (settled || outcome === undefined) return;
        // Not started (the module failed to load, or cancelled while queued): no chunk was sent.
        if (!outcome.ok) {
          settle(failureOf(outcome, task));
          return;
        }
        if (end === undefined) {
          const thread = outcome.v as number;
          if (this.pool.threadAlive(thread)) {
            stream.awaitedFrom = thread;
            this.pool.hold();
          } else stream.lost();
          return;
        }
        settle(end.ok ? undefined : endError(end, label));
      };
      const cancel = (): number => {
        if (released) return CancelResult.stale;
        const found = cancelFlags.cancel(slot, gen);
        if (found === CancelResult.done) return found;
        // A producer waiting for credits would not see its flag: wake it (once: the word must not overflow).
        if (!woken) {
          woken = true;
          credits.wake(slot);
        }
        // Queued: out of the queue now (see WorkerPool.run). Running: it may stop by itself in time.
        if (found === CancelResult.queued) kill?.abort();
        else if (found === CancelResult.running && kill !== undefined) {
          graceTimer ??= setTimeout(() => kill.abort(), task.cancelGraceMs ?? this.pool.cancelGraceMs);
        }
        return found;
      };
      const stream: OpenStream = {
        push: (items) => sink.push(items),
        end: (ended) => {
          end = ended;
          conclude();
        },
        awaitedFrom: -1,
        lost: () =>
          settle(
            new CqrsError('WORKER_CRASHED', `${label}: the thread running the stream exited before its end`, {
              handler: label,
            }),
          ),
      };
      this.open.set(key, stream);
      const producer: StreamProducer = {
        grant: (n) => {
          if (!released) credits.grant(slot, n);
        },
        stop: () => {
          if (settled || stopped) return;
          stopped = true;
          cancel();
        },
      };
      credits.open(slot, sink.connect(producer));
      const unsubscribe = onAbort(task, () => {
        if (settled) return;
        // The generator finished before the abort landed: its end is on its way and stands.
        if (cancel() === CancelResult.done) return;
        settle(abortErrorFor(abortReason(task), label));
      });
      const execution = this.pool.post(message, kill, task.originThread);
      const watcher = task.watcher;
      if (watcher !== undefined) {
        const end = (): void => watcher.end();
        execution.then(end, end);
      }
      const release = (): void => {
        released = true;
        unsubscribe();
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        cancelFlags.release(slot);
      };
      execution.then(
        (answer) => {
          if (!settled) this.pool.settleCount(answer, task);
          release();
          outcome = answer;
          conclude();
        },
        (err: unknown) => {
          if (!settled) this.pool.settleLostCount(slot, task);
          release();
          settle(threadFailure(err, task));
        },
      );
    });
  }
}

function endError(end: Extract<StreamEnd, { ok: false }>, label: string): CqrsError {
  const cause = deserializeError(end.e);
  const message = end.e.t === 'error' ? end.e.message : String(end.e.value);
  return end.k === 'handler'
    ? new CqrsError('HANDLER_FAILED', `${label} failed: ${message}`, { cause, handler: label })
    : new CqrsError('NOT_CLONEABLE', `${label}: an item cannot be cloned: ${message}`, {
        cause,
        handler: label,
      });
}

/** The error a failed answer stands for (`unwrap` throws it). */
function failureOf(outcome: TaskOutcome, task: PoolTask): unknown {
  try {
    unwrap(outcome, task);
  } catch (err) {
    return err;
  }
  return undefined;
}
