/**
 * The deepest nesting a value may have to cross a thread boundary, by default (`WorkerPool`'s `maxDepth`).
 *
 * Why a bound at all: structured clone's writer copes with nesting its reader cannot. A value nested a few
 * thousand levels deep posts without error, and then the receiving thread overflows its stack decoding it
 * (measured on Node 20: objects fail from ~1,750 levels on the main thread and on a 1 MB-stack thread, maps
 * and arrays later). Node drops such a message with a `messageerror` nobody can tie to a call — the call
 * would never settle. 1,000 leaves room below the first failure and far above any real message.
 * @internal
 */
export const DEFAULT_MAX_DEPTH = 1000;

/**
 * True when `value` nests containers (objects, arrays, maps, sets, errors) more than `maxDepth` levels deep,
 * counting the value itself as level 1 — what structured clone's reader would recurse through. Walks the
 * value once, without recursion (so no value can overflow this check), in the order the clone writes it; an
 * object met again (shared or cyclic) is not entered again, as the clone writes a back-reference for it.
 * A value the walk cannot read (a getter or proxy trap that throws) is reported as not too deep: the clone
 * meets the same fault and reports it.
 * @internal
 */
export function exceedsDepth(value: unknown, maxDepth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  try {
    return walk(value, maxDepth);
  } catch {
    return false;
  }
}

// Scratch for one value's children, reused: the check runs on every input posted to a thread.
const scratch: object[] = [];

function walk(root: object, maxDepth: number): boolean {
  scratch.length = 0;
  childrenOf(root, scratch);
  // A flat value (most inputs and results) is decided here, without allocating.
  if (scratch.length === 0) return maxDepth < 1;
  if (maxDepth < 2) return true;
  // Pending containers and their depths, as parallel stacks; children are pushed last-first so they pop in
  // the order the clone visits them.
  const values: object[] = [];
  const depths: number[] = [];
  const seen = new Set<object>([root]);
  for (let i = scratch.length - 1; i >= 0; i--) {
    values.push(scratch[i] as object);
    depths.push(2);
  }
  while (values.length > 0) {
    const value = values.pop() as object;
    const depth = depths.pop() as number;
    if (seen.has(value)) continue;
    seen.add(value);
    if (depth > maxDepth) return true;
    scratch.length = 0;
    childrenOf(value, scratch);
    for (let i = scratch.length - 1; i >= 0; i--) {
      values.push(scratch[i] as object);
      depths.push(depth + 1);
    }
  }
  return false;
}

/** Appends the containers `value` holds, in the order structured clone writes them. */
function childrenOf(value: object, into: object[]): void {
  if (!isContainer(value)) return;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      if (isContainer(k)) into.push(k);
      if (isContainer(v)) into.push(v);
    }
    return;
  }
  if (value instanceof Set) {
    for (const v of value) if (isContainer(v)) into.push(v);
    return;
  }
  if (value instanceof Error) {
    const cause = (value as { cause?: unknown }).cause;
    if (isContainer(cause)) into.push(cause);
  }
  // Arrays (elements and extra properties), plain objects and class instances (own enumerable properties).
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const child = record[key];
    if (isContainer(child)) into.push(child);
  }
}

/** An object the clone's reader recurses into; binary data is read flat. */
function isContainer(value: unknown): value is object {
  return (
    typeof value === 'object' &&
    value !== null &&
    !ArrayBuffer.isView(value) &&
    !(value instanceof ArrayBuffer) &&
    !(value instanceof SharedArrayBuffer)
  );
}
