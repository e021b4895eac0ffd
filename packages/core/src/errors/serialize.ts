import { types } from 'node:util';
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

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type SerializedErrorData = Mutable<Extract<SerializedError, { t: 'error' }>>;
type CqrsData = Mutable<NonNullable<SerializedErrorData['cqrs']>>;

// Causes can chain (and even cycle); past this depth the chain is cut.
const maxCauseDepth = 8;
const reserved = new Set(['name', 'message', 'stack', 'code', 'cause', 'issues', 'retryAfterMs', 'handler']);

/**
 * Turns anything thrown into plain data. Never throws, whatever the thrown value does: a handler's error is
 * serialized outside any try of the code that called the handler (a pool thread answering its task, a NATS
 * node answering a request), so a throw here would kill a thread or a process. Every read of the error is
 * guarded — getters that throw, proxies, a `name` or `message` whose `toString` throws — and what cannot be
 * read is described (`[unreadable: Error: boom]`) instead.
 * @internal
 */
export function serializeError(thrown: unknown, depth = 0): SerializedError {
  try {
    return serialize(thrown, depth);
  } catch (err) {
    // Not expected (every read below is guarded); this is the last line, so that the promise holds.
    return { t: 'value', value: unreadable(err) };
  }
}

function serialize(thrown: unknown, depth: number): SerializedError {
  if (!isError(thrown)) return { t: 'value', value: cloneable(thrown) };
  const err = thrown as Error & Record<string, unknown>;
  const out: SerializedErrorData = {
    t: 'error',
    name: text(read(err, 'name')),
    message: text(read(err, 'message')),
  };
  const stack = read(err, 'stack');
  if (typeof stack.value === 'string') out.stack = stack.value;
  else if (stack.failed) out.stack = unreadable(stack.value);
  const code = read(err, 'code');
  if (code.failed) out.code = unreadable(code.value);
  else if (code.value !== undefined) out.code = cloneable(code.value);
  const fields = ownFields(err);
  if (fields !== undefined) out.fields = fields;
  const cause = read(err, 'cause');
  if (cause.failed) out.cause = { t: 'value', value: unreadable(cause.value) };
  else if (cause.value !== undefined && depth < maxCauseDepth)
    out.cause = serializeError(cause.value, depth + 1);
  if (guarded(() => isCqrsError(thrown), false)) out.cqrs = cqrsDetails(err);
  return out;
}

/** The own enumerable fields besides the reserved ones, each cloneable or described; undefined when none. */
function ownFields(err: Record<string, unknown>): Record<string, unknown> | undefined {
  const keys = guarded(() => Object.keys(err), [] as string[]);
  let fields: Record<string, unknown> | undefined;
  for (const key of keys) {
    if (reserved.has(key)) continue;
    const field = read(err, key);
    fields ??= {};
    // defineProperty, not assignment: a field named `__proto__` must stay a field (assignment would set the
    // prototype of `fields` and the field would be lost on the way).
    Object.defineProperty(fields, key, {
      value: field.failed ? unreadable(field.value) : cloneable(field.value),
      writable: true,
      configurable: true,
      enumerable: true,
    });
  }
  return fields;
}

function cqrsDetails(err: Record<string, unknown>): CqrsData {
  const cqrs: CqrsData = {};
  const issues = read(err, 'issues');
  if (issues.failed) cqrs.issues = [unreadable(issues.value)];
  else if (issues.value !== undefined) {
    const copy = cloneable(issues.value);
    cqrs.issues = Array.isArray(copy) ? copy : [copy];
  }
  const retryAfterMs = read(err, 'retryAfterMs').value;
  if (typeof retryAfterMs === 'number') cqrs.retryAfterMs = retryAfterMs;
  const handler = read(err, 'handler').value;
  if (typeof handler === 'string') cqrs.handler = handler;
  return cqrs;
}

/** True for an Error (or a CqrsError from another realm); false when even asking throws. */
function isError(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return guarded(() => value instanceof Error || isCqrsError(value), false);
}

/** One property read: its value, or what the getter threw (`failed`). */
function read(obj: object, key: string): { value: unknown; failed: boolean } {
  try {
    return { value: (obj as Record<string, unknown>)[key], failed: false };
  } catch (err) {
    return { value: err, failed: true };
  }
}

/** `String(value)` for a name or a message; a value whose conversion throws is described. */
function text(field: { value: unknown; failed: boolean }): string {
  if (field.failed) return unreadable(field.value);
  if (typeof field.value === 'string') return field.value;
  try {
    return String(field.value);
  } catch (err) {
    return unreadable(err);
  }
}

function guarded<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** What stands for a value that could not be read: `[unreadable: <what reading it threw>]`. */
function unreadable(thrownByRead: unknown): string {
  return `[unreadable: ${reason(thrownByRead)}]`;
}

/** `name: message` of what a read threw, reading only strings; it may be as hostile as the error itself. */
function reason(err: unknown): string {
  try {
    if (typeof err === 'object' && err !== null) {
      const { name, message } = err as { name?: unknown; message?: unknown };
      const n = typeof name === 'string' ? name : 'Error';
      return typeof message === 'string' && message !== '' ? `${n}: ${message}` : n;
    }
    return String(err);
  } catch {
    return 'a value that cannot be read';
  }
}

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
  try {
    if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
    if (typeof value === 'symbol') return value.toString();
    if (types.isProxy(value)) return 'Proxy';
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof ctor === 'string' ? ctor : typeof value;
  } catch {
    return typeof value;
  }
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
