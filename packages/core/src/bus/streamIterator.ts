/**
 * The async iterator of what a streaming query's handler returned: an async iterable (an async generator,
 * the usual case) as it is, a sync iterable (a plain generator) read as `for await` reads it — each value
 * awaited. Anything else is a handler error.
 * @throws TypeError when `value` is neither.
 * @internal
 */
export function streamIterator(value: unknown): AsyncIterator<unknown> {
  if (typeof value === 'object' && value !== null) {
    const asyncIterate = (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator];
    if (typeof asyncIterate === 'function') return asyncIterate.call(value) as AsyncIterator<unknown>;
    if (typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function') {
      return fromSync(value as Iterable<unknown>);
    }
  }
  throw new TypeError(
    `a streaming query's handler must return an async iterable (an async generator function), got ${describe(value)}`,
  );
}

async function* fromSync(iterable: Iterable<unknown>): AsyncGenerator<unknown> {
  yield* iterable;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function')
    return 'a promise';
  return typeof value;
}
