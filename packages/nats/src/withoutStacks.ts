import type { SerializedError } from '@cqrs-pool/core/internal';

/**
 * Removes every stack trace from a serialized error, in place: its own, its causes', and those of errors held
 * in its fields, issues or thrown value (errors structured clone copied there). `data` must be fresh from
 * `serializeError`: every object in it is a copy, ours to change.
 * @internal
 */
export function withoutStacks(data: SerializedError): SerializedError {
  const held: unknown[] = [];
  for (let level: SerializedError | undefined = data; level !== undefined; ) {
    if (level.t === 'value') {
      held.push(level.value);
      break;
    }
    delete (level as { stack?: string }).stack;
    held.push(level.fields, level.cqrs?.issues);
    level = level.cause;
  }
  stripErrors(held);
  return data;
}

/** Deletes the stack of every Error reachable from `pending`. Iterative, with a visited set: the values may be
 * deep or cyclic (structured clone keeps cycles). */
function stripErrors(pending: unknown[]): void {
  const seen = new Set<object>();
  while (pending.length > 0) {
    const node = pending.pop();
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    if (ArrayBuffer.isView(node) || node instanceof ArrayBuffer) continue;
    if (node instanceof Error) delete (node as { stack?: string }).stack;
    if (node instanceof Map) {
      for (const [key, value] of node) pending.push(key, value);
    } else if (node instanceof Set) {
      for (const member of node) pending.push(member);
    }
    // Own fields of anything, errors included (`cause`, an AggregateError's `errors`, fields set on it).
    for (const key of Object.getOwnPropertyNames(node)) {
      if (key !== 'stack') pending.push((node as Record<string, unknown>)[key]);
    }
  }
}
