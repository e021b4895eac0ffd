import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import {
  BreakerState,
  type BreakerTransition,
  breakerSettings,
  type CircuitState,
} from '../shared/breakerState.js';
import { type Clock, wallClock } from '../shared/wallClock.js';
import { producesCodes } from './failureCodes.js';
import type { Middleware, Next } from './Middleware.js';
import { claimSharedState } from './sharedClaims.js';

/** A change of a handler's breaker, as `onStateChange` gets it. */
export interface CircuitStateChange {
  /** The handler whose breaker moved. */
  readonly handler: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** When, in ms of the breaker's clock (wall-clock ms since the epoch by default). */
  readonly at: number;
}

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open a closed breaker, an integer 1..65535. Default 5. */
  failureThreshold?: number;
  /** How long an open breaker refuses calls before it admits trial calls, in ms (> 0). Default 30 000. */
  resetAfterMs?: number;
  /** Trial calls admitted in half-open, across all threads and buses, an integer 1..65535; all must succeed to close. Default 1. */
  halfOpenProbes?: number;
  /**
   * Which rejections count as failures of the handler. Default: a `CqrsError` with code `HANDLER_FAILED`,
   * `TIMEOUT` or `WORKER_CRASHED`. A rejection it does not count leaves the breaker as it was (it neither
   * extends nor ends a failure run) and gives a half-open trial call's place back.
   */
  isFailure?: (err: unknown) => boolean;
  /** Called on the main thread once per transition caused by this process's calls through this middleware. */
  onStateChange?: (change: CircuitStateChange) => void;
  /** Milliseconds from a fixed origin, for tests. Default: the wall clock shared by all threads. */
  clock?: () => number;
}

const countedCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'HANDLER_FAILED',
  'TIMEOUT',
  'WORKER_CRASHED',
  'UNAVAILABLE',
]);

/**
 * The default failure test: the handler threw, timed out or crashed its thread, or no remote node serves it. Not counted: refusals by the
 * bus or other middleware (`VALIDATION`, `RATE_LIMITED`, `CIRCUIT_OPEN`), the caller's abort (`ABORTED`),
 * `NOT_CLONEABLE` (the caller's data), `OVERLOADED` (our own pool's queue, not the handler's health).
 */
function isHandlerFailure(err: unknown): boolean {
  return isCqrsError(err) && countedCodes.has(err.code);
}

/**
 * A circuit breaker per handler, its state in the pool's shared memory: every thread and every bus on the
 * pool sees one breaker per handler. Closed, it passes calls; after `failureThreshold` consecutive failures
 * it opens and refuses calls without running them; after `resetAfterMs` it admits exactly `halfOpenProbes`
 * trial calls (half-open), closes when all of them succeed and reopens on any failure. Used as bus
 * middleware, each handler gets its own breaker. `getMetrics().handlers[name].circuit` shows the state.
 *
 * Put `timeout()` inside it (after it in the list): a trial call that never settles keeps the breaker
 * half-open.
 * @throws CqrsError `INVALID_REGISTRATION` for an option out of range (at once), or at registration for a
 * second breaker on one handler or one with other settings than the handler's breaker on another bus.
 * Calls it refuses reject with `CIRCUIT_OPEN`, carrying `retryAfterMs` and `handler`.
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new CqrsError('INVALID_REGISTRATION', 'circuitBreaker: options must be an object');
  }
  let settings: ReturnType<typeof breakerSettings>;
  try {
    settings = breakerSettings(options);
  } catch (err) {
    throw new CqrsError('INVALID_REGISTRATION', `circuitBreaker: ${(err as Error).message}`);
  }
  const isFailure = functionOption(options, 'isFailure') ?? isHandlerFailure;
  const onStateChange = functionOption(options, 'onStateChange');
  const clock: Clock = functionOption(options, 'clock') ?? wallClock;
  const signature = `failureThreshold ${settings.failureThreshold}, resetAfterMs ${settings.resetAfterMs}, halfOpenProbes ${settings.halfOpenProbes}`;

  const middleware: Middleware = (next: Next, chain) => {
    const shared = chain.shared;
    const slot = shared.handlerSlot();
    claimSharedState(chain, 'circuitBreaker', 'circuit breaker', slot, signature);
    const breaker = new BreakerState(shared.region.buffer, slot, settings, clock);
    const handler = chain.name;
    const announce = (transition: BreakerTransition | undefined): void => {
      if (transition === undefined || onStateChange === undefined) return;
      try {
        onStateChange({ handler, from: transition.from, to: transition.to, at: transition.at });
      } catch (err) {
        // A listener's bug must not fail the call that happened to move the breaker.
        process.emitWarning(err instanceof Error ? err : String(err), 'CircuitBreakerListenerWarning');
      }
    };
    // The continuations of a ticket. Every call of one closed round holds the same ticket, so its pair is made
    // once per round, not per call; half-open trial calls (a few per round) get their own. They observe the
    // call beside the caller rather than in front of it: the caller gets `next`'s own promise, and these run
    // first among its reactions (attached first), so the breaker has counted a result before anyone sees it.
    const continuationsOf = (ticket: number) => ({
      passed: (): void => {
        announce(breaker.report(ticket, true));
      },
      failed: (err: unknown): void => {
        let counted: boolean;
        try {
          counted = Boolean(isFailure(err));
        } catch {
          counted = true;
        }
        if (counted) announce(breaker.report(ticket, false));
        else breaker.release(ticket);
      },
    });
    let closedTicket = -1;
    let closed = continuationsOf(0);

    return (call) => {
      const ticket = breaker.acquire();
      const transition = breaker.takeTransition();
      if (transition !== undefined) announce(transition);
      if (ticket < 0) {
        return Promise.reject(
          new CqrsError('CIRCUIT_OPEN', `${handler}: circuit open, retry in ${-ticket} ms`, {
            retryAfterMs: -ticket,
            handler,
          }),
        );
      }
      let continuations = closed;
      if ((ticket & 1) === 1) continuations = continuationsOf(ticket);
      else if (ticket !== closedTicket) {
        closed = continuations = continuationsOf(ticket);
        closedTicket = ticket;
      }
      let pending: Promise<unknown>;
      try {
        pending = next(call);
      } catch (err) {
        pending = Promise.reject(err);
      }
      // The observing promise always fulfils (`failed` returns): it cannot become an unhandled rejection.
      pending.then(continuations.passed, continuations.failed);
      return pending;
    };
  };
  return producesCodes(middleware, ['CIRCUIT_OPEN']);
}

function functionOption<K extends 'isFailure' | 'onStateChange' | 'clock'>(
  options: CircuitBreakerOptions,
  key: K,
): CircuitBreakerOptions[K] {
  const value = options[key];
  if (value !== undefined && typeof value !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', `circuitBreaker: options.${key} must be a function`);
  }
  return value;
}
