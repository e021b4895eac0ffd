import type { CallTicket, Middleware } from '../middleware/Middleware.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';

/**
 * The metrics layer of one handler's chain: counts the call in flight while it runs and, when it settles,
 * counts it as an execution (and a failure) unless the place that ran the handler already did — the inline
 * terminal or the pool thread, which also time it. What is left to count here are calls refused or
 * abandoned before a handler finished: validation, breaker, limiter, overload, aborts, crashes.
 *
 * Each pass gets its own ticket. A handler's terminal that is reached claims it and counts every attempt
 * itself, so a retry counts each attempt once whether it sits inside this layer (several attempts on one
 * pass) or outside (a pass per attempt); what is left for this layer is a pass that reached no handler.
 * @internal
 */
export function recordingLayer(region: MetricsRegion, slot: number): Middleware {
  return (next) => (call) => {
    const ticket: CallTicket = { claimed: false, settledBy: undefined };
    region.incrementInFlight(slot);
    let pending: Promise<unknown>;
    try {
      pending = next({ ...call, ticket });
    } catch (err) {
      pending = Promise.reject(err);
    }
    return pending.then(
      (value) => {
        region.decrementInFlight(slot);
        if (!ticket.claimed) {
          ticket.claimed = true;
          region.recordCount(slot, false);
        }
        return value;
      },
      (err: unknown) => {
        region.decrementInFlight(slot);
        if (!ticket.claimed) {
          ticket.claimed = true;
          region.recordCount(slot, true);
          region.recordFailureCode(slot, err);
        }
        throw err;
      },
    );
  };
}
