import { CqrsError } from '../errors/CqrsError.js';
import { abortErrorFor } from '../util/abortError.js';
import { CancelToken } from '../util/CancelToken.js';
import { abortReason, isAborted, listenAbort, offAbort } from '../util/callAbort.js';
import type { Deadline } from '../util/DeadlineQueue.js';
import { DeadlineQueue } from '../util/DeadlineQueue.js';
import { settleInto } from '../util/settleInto.js';
import { producesCodes } from './failureCodes.js';
import type { Call, ChainContext, Middleware } from './Middleware.js';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /**
   * How long a timed-out worker handler may go on before its thread is terminated and replaced, in ms.
   * Default: the pool's `cancelGraceMs` (or that of a `timeout` further out).
   */
  graceMs?: number;
}

// setTimeout fires at once (with a warning) for a delay above 2^31 − 1 ms.
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Bounds each call to `ms` milliseconds. At `ms` the caller gets `TIMEOUT`, and everything inside this
 * middleware is told: the signal it passes on aborts with that `TIMEOUT` error as its reason.
 *
 * - A **worker handler** sees `ctx.signal` abort and `ctx.isCancelled()` turn true (the pool's shared
 *   cancel flag; a thread learns only that its call was cancelled, so there `ctx.signal.reason` is an
 *   `ABORTED` CqrsError). If it is still running `graceMs` later, its thread is terminated and replaced: even
 *   a runaway synchronous loop cannot hold a thread for ever. A nested call (made by a handler in a thread)
 *   runs on its caller's thread, which is not terminated: it is only told.
 * - An **inline handler** (main thread) cannot be stopped from outside: it is told through `ctx.signal`
 *   (aborted with the `TIMEOUT` error as reason) and `ctx.isCancelled()`; the caller is released with
 *   `TIMEOUT` at `ms`, and whatever the handler does after that is ignored. Inline handlers that may run
 *   long should watch `ctx.signal`.
 *
 * The caller's own abort still yields `ABORTED`, not `TIMEOUT`. The timer is cleared as soon as the call
 * settles; none is left behind. Placement: `timeout` inside `retry` bounds each attempt (a timed-out
 * attempt is retried); `timeout` outside `retry` bounds the whole sequence, waits included.
 *
 * @example
 * ```ts
 * queries.registerHandler(Report, inWorker(url, 'report'), { middleware: [timeout(2_000, { graceMs: 500 })] });
 * ```
 * @param ms the deadline in milliseconds: a finite number > 0 (at most 2^31 − 1).
 * @throws CqrsError `INVALID_REGISTRATION` (at once) when `ms` or `options.graceMs` is out of range.
 * @returns a middleware whose calls reject with CqrsError `TIMEOUT` (with `handler`) at `ms`, or `ABORTED`
 * when the caller's signal aborts first.
 */
export function timeout(ms: number, options: TimeoutOptions = {}): Middleware {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_DELAY_MS) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `timeout: ms must be a finite number > 0 and <= ${MAX_DELAY_MS}, got ${String(ms)}`,
    );
  }
  const { graceMs } = options;
  if (
    graceMs !== undefined &&
    (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_DELAY_MS)
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `timeout: options.graceMs must be a finite number >= 0 and <= ${MAX_DELAY_MS}, got ${String(graceMs)}`,
    );
  }
  const middleware: Middleware = (next, chain) => {
    // One queue per chain: every deadline in it is `ms` after its call started, so they fall due in order.
    const deadlines = new DeadlineQueue(ms);
    return (call) => {
      // Nothing to bound: the rest of the chain refuses an aborted call with ABORTED itself.
      if (isAborted(call)) return next(call);
      const timed = new TimedCall(call, chain, ms, deadlines);
      // The caller's promise first: the call can be released while `next` runs (an abort from inside).
      const released = settleInto(timed);
      // The queue's timer stays referenced while this deadline is pending (it is what settles the call if
      // nothing inside watches the token) and is released as soon as no call is pending.
      deadlines.schedule(timed);
      listenAbort(call, timed);
      let pending: Promise<unknown>;
      try {
        pending = next(withToken(call, timed, graceMs ?? call.cancelGraceMs));
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (value) => timed.settledInside(value),
        (err: unknown) => timed.failedInside(err),
      );
      return released;
    };
  };
  return producesCodes(middleware, ['TIMEOUT']);
}

/**
 * The call passed inside a timeout: `cancel` set to the token, `signal` left as the caller's. Overriding keys
 * the call already has keeps the spread on V8's fast path; a getter for a lazily made `signal` would not
 * (measured ~430 ns per call). Code inside that needs an AbortSignal of the timeout asks `callSignal(call)`.
 */
function withToken(call: Call, token: CancelToken, cancelGraceMs: number | undefined): Call {
  return { ...call, cancel: token, cancelGraceMs };
}

function noop(): void {}

/**
 * One call under a `timeout()`, all its state in one object (a pooled call under load holds it for its whole
 * life, so each object per call is garbage-collection work): it is the token the inside watches, its own
 * deadline in the chain's queue, and its own listener for the caller's abort.
 *
 * A CancelToken, not an AbortController: making an AbortSignal costs ~3.4 µs on Node 20, and the pool and the
 * inline terminal only need to be told. The token follows the caller's signal (or an outer timeout's token);
 * a real signal is made only if something inside reads `call.signal`.
 */
class TimedCall extends CancelToken implements Deadline {
  at = 0;
  index = 0;
  /** The deadline fell due or was taken off (DeadlineQueue's). */
  done = false;
  resolve: (value: unknown) => void = noop;
  reject: (err: unknown) => void = noop;
  /** The caller has its outcome. */
  private released = false;
  /**
   * Whether the handler's terminal had counted this call when the caller was released early (a claimed
   * ticket, see recordingLayer.ts). Read then: once the call settles, the layer claims it too.
   */
  private countedInside = false;
  /** The error the caller was released with, when released early. */
  private releasedWith: unknown;

  constructor(
    private readonly call: Call,
    private readonly chain: ChainContext,
    private readonly ms: number,
    private readonly deadlines: DeadlineQueue,
  ) {
    super();
  }

  /**
   * The deadline: first the inside is told (the handler's terminal settles with this same error and counts
   * the attempt), then the caller is released, even if something inside does not watch the token.
   */
  fire(): void {
    const name = this.chain.name;
    const err = new CqrsError('TIMEOUT', `${name}: timed out after ${this.ms} ms`, { handler: name });
    this.abort(err);
    this.releaseEarly(err);
  }

  /** The caller's abort (or an outer timeout's). */
  handleEvent(): void {
    const reason = abortReason(this.call);
    // The reason passes on unchanged: inside, the call fails exactly as it would without this middleware.
    this.abort(reason);
    // Released here as well, in case something inside does not watch for aborts.
    this.releaseEarly(abortErrorFor(reason, this.chain.name));
  }

  settledInside(value: unknown): void {
    if (this.release()) this.resolve(value);
    // A success after the caller was released with a failure: a worker handler that finished just as the
    // timeout landed (the pool lets such an outcome stand), counted a success by its thread.
    else if (this.countedInside) {
      const shared = this.chain.shared;
      const slot = shared.handlerSlot();
      shared.region.recordLateFailure(slot);
      shared.region.recordFailureCode(slot, this.releasedWith);
    }
  }

  failedInside(err: unknown): void {
    if (this.release()) this.reject(err);
    // A failure inside after the caller was released with another error (a handler that failed just as the
    // timeout landed): its code is counted as the one the caller got.
    else if (this.countedInside) {
      this.chain.shared.region.moveFailureCode(this.chain.shared.handlerSlot(), err, this.releasedWith);
    }
  }

  private releaseEarly(err: unknown): void {
    if (!this.release()) return;
    this.countedInside = this.call.ticket?.claimed === true;
    this.releasedWith = err;
    this.reject(err);
  }

  /** Ends the call for its caller, once: the deadline and the abort listener go. */
  private release(): boolean {
    if (this.released) return false;
    this.released = true;
    if (!this.done) this.deadlines.remove(this);
    offAbort(this.call, this);
    return true;
  }
}
