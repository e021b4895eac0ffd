import { CqrsError } from '../errors/CqrsError.js';
import { Gcra, gcraSettings } from '../shared/gcra.js';
import { type Clock, wallClock } from '../shared/wallClock.js';
import { producesCodes } from './failureCodes.js';
import type { Middleware, Next } from './Middleware.js';
import { claimSharedState } from './sharedClaims.js';

/** Options of {@link rateLimit}. */
export interface RateLimitOptions {
  /** Calls admitted per `windowMs`, a positive integer. */
  limit: number;
  /** The window, in ms (> 0). */
  windowMs: number;
  /** Calls admitted at once after an idle period, a positive integer. Default: `limit`. */
  burst?: number;
  /**
   * Whose budget a call spends: `'handler'` (default) — one budget per handler, shared by every bus on the
   * pool that registers it; `'bus'` — one budget for all handlers of the bus the middleware is on.
   */
  key?: 'handler' | 'bus';
  /** Milliseconds from a fixed origin, for tests. Default: the wall clock shared by all threads. */
  clock?: () => number;
}

/**
 * Limits calls to `limit` per `windowMs` with bursts of up to `burst`, by GCRA on one word of shared memory:
 * exact across threads and buses, one compare-and-swap per admitted call, no timers. Over a saturated run of
 * `t` ms it admits `burst + t × limit / windowMs` calls. Refused calls do not reach the handler.
 * @throws CqrsError `INVALID_REGISTRATION` for an option out of range (at once), or at registration for a
 * second limiter of the same key on one handler, or one with other settings than the limiter already on
 * that budget. Calls it refuses reject with `RATE_LIMITED`, carrying `retryAfterMs` and `handler`.
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'rateLimit: options must be an object with limit and windowMs',
    );
  }
  let settings: ReturnType<typeof gcraSettings>;
  try {
    settings = gcraSettings(options);
  } catch (err) {
    throw new CqrsError('INVALID_REGISTRATION', `rateLimit: ${(err as Error).message}`);
  }
  const key = options.key ?? 'handler';
  if (key !== 'handler' && key !== 'bus') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `rateLimit: options.key must be 'handler' or 'bus', got ${String(key)}`,
    );
  }
  const clock = options.clock ?? wallClock;
  if (typeof clock !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', 'rateLimit: options.clock must be a function');
  }
  const signature = `limit ${settings.limit}, windowMs ${settings.windowMs}, burst ${settings.burst}`;

  const middleware: Middleware = (next: Next, chain) => {
    const shared = chain.shared;
    const slot = key === 'bus' ? shared.busSlot() : shared.handlerSlot();
    claimSharedState(chain, 'rateLimit', key === 'bus' ? 'bus rate limit' : 'rate limit', slot, signature);
    const limiter = new Gcra(shared.region.buffer, settings, clock as Clock);
    const handler = chain.name;
    return (call) => {
      const decision = limiter.tryAcquire(slot);
      if (decision.allowed) return next(call);
      const retryAfterMs = decision.retryAfterMs;
      return Promise.reject(
        new CqrsError('RATE_LIMITED', `${handler}: rate limit exceeded, retry in ${retryAfterMs} ms`, {
          retryAfterMs,
          handler,
        }),
      );
    };
  };
  return producesCodes(middleware, ['RATE_LIMITED']);
}
