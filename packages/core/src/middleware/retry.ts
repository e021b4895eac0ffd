import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import { abortError } from '../util/abortError.js';
import { callSignal } from '../util/callAbort.js';
import type { Call, Middleware } from './Middleware.js';

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Retries after the first attempt (so at most `maxRetries + 1` attempts); an integer >= 0. Default 3. */
  maxRetries?: number;
  /** The shortest wait before a retry, in ms. Default 50. */
  baseDelayMs?: number;
  /** The longest wait before a retry, in ms; at least `baseDelayMs`. Default 2000. */
  maxDelayMs?: number;
  /**
   * Decorrelated jitter (default true): each wait is random between `baseDelayMs` and three times the
   * previous wait, capped at `maxDelayMs`, so callers that failed together do not retry together. False:
   * `baseDelayMs * 2^n` before retry n + 1, capped.
   */
  jitter?: boolean;
  /**
   * Narrows which failures are retried: called with the error and the number of the attempt that failed
   * (1 for the first), only for errors retried by default; false stops. It cannot widen the default set.
   */
  isRetryable?: (err: CqrsError, attempt: number) => boolean;
  /**
   * Retry commands too. Default false: a command is not idempotent (an attempt that timed out may have
   * changed state), so on a CommandBus this middleware passes calls through untouched unless this is true.
   */
  onCommands?: boolean;
  /** Source of randomness for the jitter, `[0, 1)`; default `Math.random`. For tests. */
  random?: () => number;
}

/**
 * The codes retried by default: failures that may not happen again. Everything else is final — `VALIDATION`,
 * `CIRCUIT_OPEN`, `RATE_LIMITED`, `ABORTED`, `NOT_CLONEABLE`, `HANDLER_NOT_FOUND`, `INVALID_REGISTRATION`,
 * `DUPLICATE_HANDLER`, `CLOSED` — as are errors that are not CqrsErrors (from custom middleware).
 */
const transient: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'HANDLER_FAILED',
  'TIMEOUT',
  'WORKER_CRASHED',
  'OVERLOADED',
  'UNAVAILABLE',
]);

// setTimeout fires at once (with a warning) for a delay above 2^31 − 1 ms.
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Retries calls that failed with a transient error, waiting between attempts with exponential backoff and
 * decorrelated jitter (the AWS scheme: `wait = min(maxDelayMs, random(baseDelayMs, 3 × previous wait))`).
 *
 * Retried by default: `HANDLER_FAILED`, `TIMEOUT`, `WORKER_CRASHED`, `OVERLOADED`, `UNAVAILABLE`; `isRetryable` can narrow
 * that (say, by the handler's error in `cause`). Never retried, whatever `isRetryable` says: `VALIDATION`,
 * `CIRCUIT_OPEN`, `RATE_LIMITED`, `ABORTED`, `NOT_CLONEABLE`, `HANDLER_NOT_FOUND`, `INVALID_REGISTRATION`,
 * `DUPLICATE_HANDLER`, `CLOSED`, and errors that are not CqrsErrors. After the last attempt the caller gets
 * the last attempt's error, unchanged.
 *
 * Commands are passed through untouched unless `onCommands: true`: a command is not idempotent.
 *
 * A streaming query (`stream()`) is retried only while none of its items has reached the consumer: a failure
 * before the first item (a crash at start, `OVERLOADED`, a generator that throws before yielding) is retried
 * like any call; after one, its error goes to the consumer (a replay would deliver the first items twice).
 *
 * When the call's signal aborts, no further attempt starts; a wait in progress ends at once with `ABORTED`
 * (or the signal's `TIMEOUT` reason, when a `timeout` outside this middleware fired), its timer cleared.
 * Placement: `timeout` inside `retry` bounds each attempt; `retry` inside `timeout` is bounded as a whole.
 * Put `validation` inside `retry` (its refusals are final anyway). Every attempt that reaches the handler
 * counts as an execution in the metrics.
 *
 * @example
 * ```ts
 * const queries = new QueryBus({ pool, middleware: [retry({ maxRetries: 2 }), timeout(1_000), validation()] });
 * ```
 * @throws CqrsError `INVALID_REGISTRATION` (at once) for an option out of range (the message names it).
 * @returns a middleware whose calls reject with the last attempt's error (any code), or `ABORTED` /
 * `TIMEOUT` (the signal's reason) when the signal aborts during a wait.
 */
export function retry(options: RetryOptions = {}): Middleware {
  const {
    maxRetries = 3,
    baseDelayMs = 50,
    maxDelayMs = 2000,
    jitter = true,
    isRetryable,
    onCommands = false,
    random = Math.random,
  } = options;
  if (typeof maxRetries !== 'number' || !Number.isInteger(maxRetries) || maxRetries < 0) {
    invalid('maxRetries', 'an integer >= 0', maxRetries);
  }
  if (typeof baseDelayMs !== 'number' || !(baseDelayMs >= 0 && baseDelayMs <= MAX_DELAY_MS)) {
    invalid('baseDelayMs', `a number >= 0 and <= ${MAX_DELAY_MS}`, baseDelayMs);
  }
  if (typeof maxDelayMs !== 'number' || !(maxDelayMs >= baseDelayMs && maxDelayMs <= MAX_DELAY_MS)) {
    invalid('maxDelayMs', `a number >= baseDelayMs (${baseDelayMs}) and <= ${MAX_DELAY_MS}`, maxDelayMs);
  }
  if (typeof jitter !== 'boolean') invalid('jitter', 'a boolean', jitter);
  if (isRetryable !== undefined && typeof isRetryable !== 'function') {
    invalid('isRetryable', 'a function', isRetryable);
  }
  if (typeof onCommands !== 'boolean') invalid('onCommands', 'a boolean', onCommands);
  if (typeof random !== 'function') invalid('random', 'a function', random);

  /** The wait before retry `n` (1-based), given the previous wait. */
  const delayBefore = (n: number, previous: number): number => {
    if (!jitter) return Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1));
    const upper = Math.max(baseDelayMs, previous * 3);
    return Math.min(maxDelayMs, baseDelayMs + random() * (upper - baseDelayMs));
  };

  return (next, chain) => {
    if (chain.kind === 'command' && !onCommands) return next;
    const name = chain.name;
    const retried = (err: unknown, attempt: number, call: Call): boolean => {
      if (attempt > maxRetries) return false;
      // A stream that delivered an item is never replayed: its consumer would get those items twice.
      if ((call.stream?.delivered ?? 0) > 0 || call.stream?.stopped === true) return false;
      // callSignal, not call.signal: inside a timeout it is the timeout's (made here, on the failure path only).
      if (callSignal(call)?.aborted === true) return false;
      if (!isCqrsError(err) || !transient.has(err.code)) return false;
      return isRetryable === undefined || isRetryable(err, attempt) === true;
    };
    /** Attempts after the first, which failed with `first`. The same call goes to each attempt. */
    const again = async (call: Call, first: unknown): Promise<unknown> => {
      let err = first;
      let wait = baseDelayMs;
      for (let attempt = 1; retried(err, attempt, call); attempt++) {
        wait = delayBefore(attempt, wait);
        await sleep(wait, callSignal(call), name);
        try {
          return await next(call);
        } catch (failed) {
          err = failed;
        }
      }
      throw err;
    };
    return (call) => {
      // Per call, only the first attempt's failure handler is made; the retry loop starts on a failure.
      let first: Promise<unknown>;
      try {
        first = next(call);
      } catch (err) {
        first = Promise.reject(err);
      }
      return first.then(undefined, (err: unknown) => again(call, err));
    };
  };
}

/** Resolves after `ms`, or rejects at once (timer cleared) when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortError(signal, name));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal, name));
    };
    // Not unref'd: a caller is waiting on this timer, and an abort clears it.
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function invalid(option: string, what: string, value: unknown): never {
  throw new CqrsError(
    'INVALID_REGISTRATION',
    `retry: options.${option} must be ${what}, got ${String(value)}`,
  );
}
