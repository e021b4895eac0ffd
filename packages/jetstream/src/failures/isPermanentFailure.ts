import { isCqrsError } from '@cqrs-pool/core';

// No retry cures these: the input, the registration or the message itself is wrong.
const permanentCodes = new Set<string>([
  'VALIDATION',
  'HANDLER_NOT_FOUND',
  'INVALID_REGISTRATION',
  'DUPLICATE_HANDLER',
  'NOT_CLONEABLE',
  'NESTING_TOO_DEEP',
]);

/**
 * How a serving node classifies a failed durable message: permanent (dead-lettered at once) or transient
 * (retried with backoff until `maxDeliver`).
 *
 * Permanent: `VALIDATION`, `HANDLER_NOT_FOUND`, `INVALID_REGISTRATION`, `DUPLICATE_HANDLER`,
 * `NOT_CLONEABLE`, `NESTING_TOO_DEEP`, and a `HANDLER_FAILED` whose handler error carries `permanent: true`
 * (see {@link permanent}); an error that is not a `CqrsError` but carries `permanent: true` too.
 * Transient: everything else — `TIMEOUT`, `WORKER_CRASHED`, `OVERLOADED`, `UNAVAILABLE`, `CIRCUIT_OPEN`,
 * `RATE_LIMITED`, `ABORTED`, `CLOSED`, and `HANDLER_FAILED` without the mark.
 */
export function isPermanentFailure(err: unknown): boolean {
  if (isCqrsError(err)) {
    if (permanentCodes.has(err.code)) return true;
    if (err.code !== 'HANDLER_FAILED') return false;
    return markedPermanent(err.cause);
  }
  return markedPermanent(err);
}

function markedPermanent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
}
