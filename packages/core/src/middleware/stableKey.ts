/**
 * A deterministic string for a query input, equal for inputs that are equal as data, whatever the order their
 * object keys were written in: the default cache key of `caching()`. `undefined` when the input cannot be
 * keyed safely (a function, a symbol, a cycle, a class instance, a getter that throws): the caller then runs
 * the query uncached rather than risk two different inputs sharing one key.
 *
 * What it keys, and how two inputs compare:
 * - strings, booleans, `null`, `undefined`, numbers (`NaN`, `±Infinity` included; `-0` differs from `0`, as a
 *   handler can tell them apart), BigInts (`1n` differs from `1`);
 * - plain objects (prototype `Object.prototype` or `null`) by their own enumerable string keys, sorted;
 *   a key present with the value `undefined` differs from a missing key (a handler can tell them apart);
 *   symbol keys are ignored, as the structured clone that carries an input to a pool thread drops them;
 * - arrays in order, a hole differing from `undefined` and named own properties keyed after the items (structured
 *   clone carries both to a pool thread, so a handler sees them); `Date`s by their time, typed arrays by type
 *   and contents, `Map`s and `Set`s by their entries regardless of insertion order.
 * Refused: functions, symbols, cycles (a value shared twice without a cycle is fine),
 * any other object (class instances, `RegExp`, `Error`, `DataView`, boxed primitives …).
 * @internal
 */
export function stableKey(input: unknown): string | undefined {
  try {
    return write(input, []);
  } catch {
    // A getter or a proxy trap threw while reading the input: not keyable.
    return undefined;
  }
}

// Every token is self-delimiting — strings are JSON-quoted, everything else is a bare word, a number or a
// bracketed list — so distinct values cannot concatenate into the same key.
function write(value: unknown, ancestors: object[]): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // NaN and ±Infinity are bare words, unlike the quoted strings 'NaN', 'Infinity'; String(-0) is '0'.
      return value === 0 && 1 / value < 0 ? '-0' : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return `${value}n`;
    case 'object':
      if (value === null) return 'null';
      return writeObject(value, ancestors);
    default:
      // function, symbol
      return undefined;
  }
}

function writeObject(value: object, ancestors: object[]): string | undefined {
  if (ancestors.includes(value)) return undefined;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null)
    return writePlain(value as Record<string, unknown>, ancestors);
  if (Array.isArray(value)) return writeArray(value, ancestors);
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (value instanceof Map) {
    const entries: unknown[] = [];
    for (const entry of value) entries.push(entry);
    return writeList('Map[', value, entries, ancestors, true);
  }
  if (value instanceof Set) return writeList('Set[', value, [...value], ancestors, true);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    // The tag, not the constructor: a Buffer keys as the Uint8Array it becomes in a pool thread.
    const tag = Object.prototype.toString.call(value).slice(8, -1);
    return `${tag}[${Array.prototype.join.call(value, ',')}]`;
  }
  return undefined;
}

// Object keys repeat from call to call (they are the input type's field names): their JSON form is kept,
// bounded, which saves a JSON.stringify per field on the cache-hit path.
const quotedKeys = new Map<string, string>();
const QUOTED_KEYS_MAX = 4096;

function quoted(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotedKeys.size < QUOTED_KEYS_MAX) quotedKeys.set(key, q);
  }
  return q;
}

function writePlain(value: Record<string, unknown>, ancestors: object[]): string | undefined {
  const keys = Object.keys(value);
  if (keys.length > 1) keys.sort();
  ancestors.push(value);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const part = write(value[key], ancestors);
    if (part === undefined) return undefined;
    out += `${i === 0 ? '' : ','}${quoted(key)}:${part}`;
  }
  ancestors.pop();
  return `${out}}`;
}

/** `[` + the items (`hole` for a missing one) + `]`, then `{…}` of the named own properties when there are any. */
function writeArray(list: unknown[], ancestors: object[]): string | undefined {
  ancestors.push(list);
  let out = '[';
  let present = 0;
  for (let i = 0; i < list.length; i++) {
    let part: string | undefined;
    if (i in list) {
      present++;
      part = write(list[i], ancestors);
      if (part === undefined) return undefined;
    } else part = 'hole';
    out += i === 0 ? part : `,${part}`;
  }
  out += ']';
  // Own enumerable keys beyond the items present are named properties (`Object.assign([1], { admin: true })`).
  const keys = Object.keys(list);
  if (keys.length > present) {
    const named = keys.slice(present).sort();
    let props = '{';
    for (let i = 0; i < named.length; i++) {
      const key = named[i] as string;
      const part = write((list as unknown as Record<string, unknown>)[key], ancestors);
      if (part === undefined) return undefined;
      props += `${i === 0 ? '' : ','}${quoted(key)}:${part}`;
    }
    out += `${props}}`;
  }
  ancestors.pop();
  return out;
}

/** `open` + the items + `]`; sorted when the collection's order carries no meaning (Map, Set). */
function writeList(
  open: string,
  container: object,
  items: readonly unknown[],
  ancestors: object[],
  sorted: boolean,
): string | undefined {
  ancestors.push(container);
  const parts: string[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const part = write(items[i], ancestors);
    if (part === undefined) return undefined;
    parts[i] = part;
  }
  ancestors.pop();
  if (sorted) parts.sort();
  return `${open}${parts.join(',')}]`;
}
