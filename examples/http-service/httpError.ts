import { type ErrorCode, isCqrsError } from '@cqrs-pool/core';

/** What a route answers for an error: the status, its headers, and a JSON body. */
export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string; issues?: readonly unknown[]; retryAfterMs?: number };
}

/**
 * The status of each code a call can fail with. Refusals that say "come back later" (the limiter, a full
 * queue, an open breaker) carry Retry-After; a handler's own failure is a 500 whose message says no more than
 * that (its cause stays in the server's logs). A code added later answers 500 until it is listed here.
 */
const statusOf: Partial<Record<ErrorCode, number>> = {
  VALIDATION: 400,
  HANDLER_NOT_FOUND: 404,
  RATE_LIMITED: 429,
  OVERLOADED: 429,
  // The client closed the connection before the answer; nobody reads this one (nginx's convention).
  ABORTED: 499,
  HANDLER_FAILED: 500,
  WORKER_CRASHED: 500,
  NOT_CLONEABLE: 500,
  DUPLICATE_HANDLER: 500,
  INVALID_REGISTRATION: 500,
  CIRCUIT_OPEN: 503,
  CLOSED: 503,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
};

/** Codes whose message may reach the client: they describe the request or the service's state, not its code. */
const shownToClients = new Set<ErrorCode>([
  'VALIDATION',
  'HANDLER_NOT_FOUND',
  'RATE_LIMITED',
  'OVERLOADED',
  'CIRCUIT_OPEN',
  'CLOSED',
  'UNAVAILABLE',
  'TIMEOUT',
]);

/** Codes after which the client should retry, and so gets a Retry-After header. */
const retryable = new Set<ErrorCode>(['RATE_LIMITED', 'OVERLOADED', 'CIRCUIT_OPEN', 'CLOSED', 'UNAVAILABLE']);

/**
 * Maps an error from a bus (a `CqrsError`) to an HTTP answer; `undefined` for any other error (the web
 * framework's own, say a body that is not JSON, keeps its status). `Retry-After` is in whole seconds, rounded
 * up from `retryAfterMs` when the error has one, else 1.
 */
export function httpErrorOf(err: unknown): HttpError | undefined {
  if (!isCqrsError(err)) return undefined;
  const status = statusOf[err.code] ?? 500;
  const headers: Record<string, string> = {};
  if (retryable.has(err.code)) {
    headers['retry-after'] = String(Math.max(1, Math.ceil((err.retryAfterMs ?? 1_000) / 1_000)));
  }
  const body: HttpError['body'] = {
    error: err.code,
    message: shownToClients.has(err.code) ? err.message : 'the request failed; see the service logs',
  };
  if (err.issues !== undefined) body.issues = err.issues;
  if (err.retryAfterMs !== undefined) body.retryAfterMs = err.retryAfterMs;
  return { status, headers, body };
}
