import { types } from 'node:util';

/** Most objects one check visits before it gives up (and the caller test-clones instead). */
const BUDGET = 2_000;
/** Deepest nesting it follows. */
const MAX_DEPTH = 32;
/** The deepest value {@link surelyCloneable} ever accepts, counting the value itself as level 1. @internal */
export const SURELY_CLONEABLE_DEPTH = MAX_DEPTH + 1;

/**
 * True when structured clone certainly accepts `value`: primitives (symbols excepted), plain objects and
 * arrays of such, `Date`s and binary data. False means "not sure" — a function or a symbol somewhere, a class
 * instance, a `Map`, a proxy, a cycle or a very large or deep value — and the caller then test-clones it.
 *
 * Why: a pool thread must not hand piscina a result that cannot be posted (the post fails outside any try and
 * kills the thread), and test-cloning every object result costs a full copy per call — the largest share of a
 * small task's time in the thread. This walk reads each property once and allocates nothing.
 * @internal
 */
export function surelyCloneable(value: unknown): boolean {
  left = BUDGET;
  return walk(value, 0);
}

// Objects the current check may still visit. Module state rather than an argument: the check runs on every
// object result, and a thread runs one check at a time (it is synchronous).
let left = 0;

function walk(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false; // function, symbol
  }
  if (value === null) return true;
  if (--left < 0 || depth > MAX_DEPTH || types.isProxy(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const list = value as unknown[];
    for (let i = 0; i < list.length; i++) if (!walk(list[i], depth + 1)) return false;
    // Extra named properties on an array are cloned too.
    return Object.keys(list).length === list.length || keysCloneable(list, depth);
  }
  if (proto === Object.prototype || proto === null) return keysCloneable(value, depth);
  if (value instanceof Date) return true;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return true;
  }
  return false;
}

function keysCloneable(value: object, depth: number): boolean {
  const record = value as Record<string, unknown>;
  for (const key in record) {
    // A getter runs here as it would in the clone; if it throws, the caller's test clone reports it.
    if (Object.hasOwn(record, key) && !walk(record[key], depth + 1)) return false;
  }
  return true;
}
