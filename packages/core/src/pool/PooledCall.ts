import type { CancelFlags } from '../shared/CancelFlags.js';
import { CancelResult } from '../shared/CancelFlags.js';
import { abortErrorFor } from '../util/abortError.js';
import type { AbortHandler } from '../util/CancelToken.js';
import { abortReason, isAborted, offAbort } from '../util/callAbort.js';
import type { Settlers } from '../util/settleInto.js';
import type { TaskOutcome } from './protocol.js';
import type { OutcomeSink, ScheduledCall } from './TaskScheduler.js';
import type { PoolTask } from './WorkerPool.js';
import { labelOf, threadFailure, unwrap } from './WorkerPool.js';

/** What a {@link PooledCall} is told of its pool: made once per pool. @internal */
export interface PoolSide {
  readonly cancelFlags: CancelFlags;
  /** The pool's `cancelGraceMs`, for a task that has none of its own. */
  readonly cancelGraceMs: number;
  /** The thread counted the call: the metrics layer must not count it again. */
  settleCount(outcome: TaskOutcome, task: PoolTask): void;
  /** The thread died without an answer: counted as its DONE flag says. */
  settleLostCount(slot: number, task: PoolTask): void;
  /** Records how long a recorded call waited before its handler started. */
  recordQueueWait(slot: number, task: PoolTask, queuedAt: number): void;
  /** Terminates the thread that runs the call in `slot` (generation `gen`), if it runs it still. */
  terminateRunner(slot: number, gen: number): void;
  /** Drops a call while it still waits in the scheduler. */
  drop(call: ScheduledCall): void;
  /** The pool is done with a call (`close()` waits for every call to end). */
  ended(): void;
}

/**
 * One call of `WorkerPool.run`, its whole state in one object: the sink of its outcome (TaskScheduler), its
 * listener for the caller's abort, and the holder of its caller's promise. Under load a pooled call lives for
 * a few ms with hundreds of others, so each object (or closure, or promise) per call is work for the young
 * generation's collector — measured, most of what a `timeout()` cost pooled calls.
 *
 * The caller's promise settles with the call's outcome or, at once, with the caller's abort (the handler is
 * told through the shared flag; one still running after the grace period has its thread terminated). The
 * cancel slot is released, and the queue wait recorded, only when the thread is done with the call.
 * @internal
 */
export class PooledCall implements OutcomeSink, AbortHandler, Settlers<unknown> {
  resolve: (value: unknown) => void = noop;
  reject: (err: unknown) => void = noop;
  /** Its place in the scheduler (undefined for a nested call, which runs on its caller's thread). */
  scheduled: ScheduledCall | undefined = undefined;
  /** Its caller has its answer (the outcome, or the abort first). */
  private answered = false;
  /**
   * The pool is done with it. The scheduler tells a call's outcome once; were it told twice, only the first
   * would count, as with a promise (which is how a batch-mate dropped from the queue after its batch had left
   * went unnoticed until this object replaced the promise).
   */
  private ended = false;
  private graceTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly side: PoolSide,
    readonly task: PoolTask,
    private readonly slot: number,
    private readonly gen: number,
    /** When it was handed to the pool (`timeOrigin`-based ms), 0 when its queue wait is not recorded. */
    private readonly queuedAt: number,
    /** The caller can abort it: this object listens for that. */
    private readonly abortable: boolean,
  ) {}

  get cancelled(): boolean {
    return isAborted(this.task);
  }

  /** Its outcome came (or it was dropped while it waited). */
  settle(outcome: TaskOutcome): void {
    if (this.ended) return;
    this.end();
    if (!this.answered) this.side.settleCount(outcome, this.task);
    this.release();
    if (this.answered) return;
    this.answered = true;
    let value: unknown;
    try {
      value = unwrap(outcome, this.task);
    } catch (err) {
      this.failWith(err);
      return;
    }
    this.task.settling?.(undefined, false);
    this.resolve(value);
  }

  /** Its message never came back (its thread died, its input could not be cloned, the pool closed). */
  fail(err: unknown): void {
    if (this.ended) return;
    this.end();
    if (!this.answered) this.side.settleLostCount(this.slot, this.task);
    this.release();
    if (this.answered) return;
    this.answered = true;
    this.failWith(threadFailure(err, this.task));
  }

  /** The caller aborted (its signal, or a `timeout()`'s token). */
  handleEvent(): void {
    if (this.answered) return;
    const found = this.side.cancelFlags.cancel(this.slot, this.gen);
    // The handler finished before the abort landed: its outcome is on its way and stands.
    if (found === CancelResult.done) return;
    this.answered = true;
    this.failWith(abortErrorFor(abortReason(this.task), labelOf(this.task)));
    const scheduled = this.scheduled;
    if (scheduled === undefined) return;
    // Queued: taken out of the queue now. Left there (the thread would skip it when it got there), abandoned
    // calls pile up when callers time out faster than threads drain, filling maxQueue with dead entries: live
    // calls then get OVERLOADED. The scheduler drops a call it has not posted or pinned at no cost; one
    // already on its way to a thread (in a batch, on the board) is skipped there: its flag says cancelled.
    if (found === CancelResult.queued) this.side.drop(scheduled);
    // Running: it may stop by itself in time; if not, its thread goes.
    else if (found === CancelResult.running) {
      this.graceTimer = setTimeout(
        () => this.side.terminateRunner(this.slot, this.gen),
        this.task.cancelGraceMs ?? this.side.cancelGraceMs,
      );
    }
  }

  /** The caller gets `err`: its terminal is told first (PoolTask.settling). */
  private failWith(err: unknown): void {
    this.task.settling?.(err, true);
    this.reject(err);
  }

  /** The pool is done with it; a keyed call gives its key up (held until the thread is done). */
  private end(): void {
    this.ended = true;
    this.side.ended();
    this.task.watcher?.end();
  }

  /** The thread is done with it: the listener, the grace timer and the cancel slot go. */
  private release(): void {
    if (this.abortable) offAbort(this.task, this);
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.side.recordQueueWait(this.slot, this.task, this.queuedAt);
    this.side.cancelFlags.release(this.slot);
  }
}

function noop(): void {}
