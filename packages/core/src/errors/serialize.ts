import { CqrsError, isCqrsError } from './CqrsError.js';
import { isErrorCode } from './codes.js';

/**
 * An error as plain data, safe for structured clone. Structured clone keeps neither subclasses nor custom
 * fields, so errors cross threads in this shape and are rebuilt on the other side.
 * @internal
 */
export type SerializedError =
  | {
      readonly t: 'error';
      readonly name: string;
      readonly message: string;
      readonly stack?: string;
      readonly code?: unknown;
      /** Own enumerable fields besides the ones above, each cloneable (or replaced by a description). */
      readonly fields?: Record<string, unknown>;
      readonly cause?: SerializedError;
      /** Set when the error was a CqrsError, so it is rebuilt as one. */
      readonly cqrs?: {
        readonly issues?: readonly unknown[];
        readonly retryAfterMs?: number;
        readonly handler?: string;
      };
    }
  /** Something thrown that is not an Error (a string, a number, a plain object). */
  | { readonly t: 'value'; readonly value: unknown };

// Causes can chain (and even cycle); past this depth the chain is cut.
const maxCauseDepth = 8;
const reserved = new Set(['name', 'message', 'stack', 'code', 'cause', 'issues', 'retryAfterMs', 'handler']);

function cloneable(value: unknown): unknown {
  if (
    value === null ||
    (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol')
  ) {
    return value;
  }
  try {
    return structuredClone(value);
  } catch {
    return `[not cloneable: ${describe(value)}]`;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'symbol') return value.toString();
  const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' ? ctor : typeof value;
}

/** Turns anything thrown into plain data. @internal */
export function serializeError(thrown: unknown, depth = 0): SerializedError {
  if (!(thrown instanceof Error) && !isCqrsError(thrown)) return { t: 'value', value: cloneable(thrown) };
  const err = thrown as Error & Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  let hasFields = false;
  for (const key of Object.keys(err)) {
    if (reserved.has(key)) continue;
    // defineProperty, not assignment: a field named `__proto__` must stay a field (assignment would set the
    // prototype of `fields` and the field would be lost on the way).
    Object.defineProperty(fields, key, {
      value: cloneable(err[key]),
      writable: true,
      configurable: true,
      enumerable: true,
    });
    hasFields = true;
  }
  const out: {
    t: 'error';
    name: string;
    message: string;
    stack?: string;
    code?: unknown;
    fields?: Record<string, unknown>;
    cause?: SerializedError;
    cqrs?: { issues?: readonly unknown[]; retryAfterMs?: number; handler?: string };
  } = { t: 'error', name: String(err.name), message: String(err.message) };
  if (typeof err.stack === 'string') out.stack = err.stack;
  if (err.code !== undefined) out.code = cloneable(err.code);
  if (hasFields) out.fields = fields;
  if (err.cause !== undefined && depth < maxCauseDepth) out.cause = serializeError(err.cause, depth + 1);
  if (isCqrsError(thrown)) {
    const cqrs: { issues?: readonly unknown[]; retryAfterMs?: number; handler?: string } = {};
    if (thrown.issues !== undefined) cqrs.issues = cloneable(thrown.issues) as readonly unknown[];
    if (thrown.retryAfterMs !== undefined) cqrs.retryAfterMs = thrown.retryAfterMs;
    if (thrown.handler !== undefined) cqrs.handler = thrown.handler;
    out.cqrs = cqrs;
  }
  return out;
}

/** Rebuilds what {@link serializeError} produced: a CqrsError stays one; any other error keeps its name, stack, code and fields. @internal */
export function deserializeError(data: SerializedError): unknown {
  if (data.t === 'value') return data.value;
  const cause = data.cause === undefined ? undefined : deserializeError(data.cause);
  let err: Error;
  if (data.cqrs !== undefined && isErrorCode(data.code)) {
    const details: ConstructorParameters<typeof CqrsError>[2] = {};
    if (cause !== undefined) details.cause = cause;
    if (data.cqrs.issues !== undefined) details.issues = data.cqrs.issues;
    if (data.cqrs.retryAfterMs !== undefined) details.retryAfterMs = data.cqrs.retryAfterMs;
    if (data.cqrs.handler !== undefined) details.handler = data.cqrs.handler;
    err = new CqrsError(data.code, data.message, details);
  } else {
    err = new Error(data.message, cause === undefined ? undefined : { cause });
    // An own property: the rebuilt error reports the thrower's class name (TypeError, NotFoundError, …).
    Object.defineProperty(err, 'name', {
      value: data.name,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    if (data.code !== undefined) (err as Error & { code?: unknown }).code = data.code;
  }
  if (data.stack !== undefined) err.stack = data.stack;
  if (data.fields !== undefined) {
    for (const [key, value] of Object.entries(data.fields)) {
      // defineProperty, not assignment: a field named `__proto__` must stay a field, not swap the prototype.
      Object.defineProperty(err, key, { value, writable: true, configurable: true, enumerable: true });
    }
  }
  return err;
}
