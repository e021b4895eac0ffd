/**
 * Every failure the buses produce carries one of these codes. They are strings, not numbers, so they
 * survive logs, JSON and thread boundaries unchanged.
 */
export const ErrorCodes = {
  /** No handler is registered under that name. */
  HANDLER_NOT_FOUND: 'HANDLER_NOT_FOUND',
  /** A second handler was registered for a name that already has one. */
  DUPLICATE_HANDLER: 'DUPLICATE_HANDLER',
  /** A registration was refused: empty name, missing handler, wrong kind, or a worker module/export that cannot be loaded. */
  INVALID_REGISTRATION: 'INVALID_REGISTRATION',
  /** The input (or a declared output) failed its zod schema; `issues` holds the zod issues. */
  VALIDATION: 'VALIDATION',
  /** The timeout middleware fired. */
  TIMEOUT: 'TIMEOUT',
  /** The caller's signal aborted. */
  ABORTED: 'ABORTED',
  /** Refused by the circuit breaker; `retryAfterMs` says when to try again. */
  CIRCUIT_OPEN: 'CIRCUIT_OPEN',
  /** Refused by the rate limiter; `retryAfterMs` says when to try again. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The pool's queue is full; nothing was queued. */
  OVERLOADED: 'OVERLOADED',
  /** The handler threw; `cause` is its error, rebuilt across threads. */
  HANDLER_FAILED: 'HANDLER_FAILED',
  /** The thread running the handler died; the pool replaces it. */
  WORKER_CRASHED: 'WORKER_CRASHED',
  /** The input or the result cannot cross a thread boundary (structured clone refused it). */
  NOT_CLONEABLE: 'NOT_CLONEABLE',
  /** The bus or the pool is closed. */
  CLOSED: 'CLOSED',
  /** A chain of nested calls went deeper than the pool's `maxNestingDepth` (a handler calling itself, or a cycle). */
  NESTING_TOO_DEEP: 'NESTING_TOO_DEEP',
  /** No node serves the handler (NATS: no responders on its subject), or the connection to them is gone. */
  UNAVAILABLE: 'UNAVAILABLE',
} as const;

/** One of the {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const known = new Set<string>(Object.values(ErrorCodes));

/** @internal */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && known.has(value);
}
