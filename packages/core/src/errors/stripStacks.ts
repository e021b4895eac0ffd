// Causes can chain (and even cycle); past this depth the chain is left as it is, as serialize.ts does.
const maxDepth = 8;

/**
 * Cuts the stack of `err`, of its `cause` chain and of an `AggregateError`'s `errors`, to their first line
 * (`name: message`), for buses with `errorStacks: false`. The errors are changed in place, not copied:
 * copying a chain on every failure costs more than the stacks it hides, and a rejected caller owns the error
 * it was given — including an error its own inline handler threw, which is the `cause` of `HANDLER_FAILED`.
 * Never throws (a frozen error or a throwing getter keeps its stack). Returns `err`.
 * @internal
 */
export function stripStacks<T>(err: T): T {
  strip(err, 0);
  return err;
}

function strip(value: unknown, depth: number): void {
  if (typeof value !== 'object' || value === null || depth > maxDepth) return;
  const e = value as {
    stack?: unknown;
    name?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  try {
    // Frozen means frozen: since V8 12 (Node 22) `stack` is an own accessor whose setter still writes on a
    // frozen error, so the check cannot be left to the assignment throwing, as it does on Node 20.
    if (typeof e.stack === 'string' && !Object.isFrozen(e)) {
      const name = String(e.name ?? 'Error');
      const message = String(e.message ?? '');
      e.stack = message === '' ? name : `${name}: ${message}`;
    }
  } catch {
    // Not ours to fix: the stack stays.
  }
  let cause: unknown;
  let errors: unknown;
  try {
    cause = e.cause;
    errors = e.errors;
  } catch {
    return;
  }
  strip(cause, depth + 1);
  if (Array.isArray(errors)) for (const inner of errors) strip(inner, depth + 1);
}
