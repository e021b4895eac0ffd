import type { ErrorCode } from './codes.js';
import { isErrorCode } from './codes.js';

// A registry symbol, not a module-local one: the guard must recognise errors made by another copy of this
// module (a second bundle, a worker's copy) where `instanceof` fails.
const brand = Symbol.for('cqrs-pool.CqrsError');

/** Extra facts an error can carry, depending on its code. */
export interface CqrsErrorDetails {
  /** The underlying error: the handler's error for `HANDLER_FAILED`, the thread's for `WORKER_CRASHED`. */
  cause?: unknown;
  /** The zod issues for `VALIDATION`. */
  issues?: readonly unknown[];
  /** For `CIRCUIT_OPEN` and `RATE_LIMITED`: how long until a call may be admitted. */
  retryAfterMs?: number;
  /** The handler name the failure concerns, when there is one. */
  handler?: string;
}

/**
 * The one error class of cqrs-pool. Test for it with {@link isCqrsError}, which works across module copies
 * and threads; `instanceof` does not.
 */
export class CqrsError extends Error {
  readonly code: ErrorCode;
  // `declare`: present only when given, so an error's own keys (logged, serialized) carry no undefined noise.
  declare readonly issues?: readonly unknown[];
  declare readonly retryAfterMs?: number;
  declare readonly handler?: string;

  constructor(code: ErrorCode, message: string, details: CqrsErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    const self = this as { issues?: readonly unknown[]; retryAfterMs?: number; handler?: string };
    if (details.issues !== undefined) self.issues = details.issues;
    if (details.retryAfterMs !== undefined) self.retryAfterMs = details.retryAfterMs;
    if (details.handler !== undefined) self.handler = details.handler;
  }

  override get name(): string {
    return 'CqrsError';
  }

  /** @internal */
  get [brand](): true {
    return true;
  }
}

/**
 * True when `err` is a {@link CqrsError} (from any copy of this library, or rebuilt after crossing a thread),
 * and, when `code` is given, carries that code.
 */
export function isCqrsError(err: unknown, code?: ErrorCode): err is CqrsError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { [brand]?: unknown; code?: unknown };
  if (e[brand] !== true || !isErrorCode(e.code)) return false;
  return code === undefined || e.code === code;
}
