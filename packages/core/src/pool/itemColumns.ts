import { types } from 'node:util';

/**
 * Rows as columns: when every item of a stream chunk (StreamChunk.cols), or of an array a pooled handler
 * returns (resultColumns.ts), is a plain object with the same keys in the same order — a query's rows — they
 * cross as one array of keys and one array of values per key, instead of an array of objects. Structured clone reads and rebuilds an object key by
 * key (measured: ~620 ns an item of two fields to deserialize, ~270 ns to serialize); arrays of values
 * cross at a fraction of that, and the receiver rebuilds each row with plain stores (~290 ns an item,
 * deserializing included; ~190 ns to build and serialize).
 *
 * The rows come out as structured clone would make them: plain objects (prototype `Object.prototype`), the
 * same own enumerable string keys in the same order, each value cloned. Anything else travels as it is: an
 * item that is not a plain object (an array, a Date, a Map, a class instance, a primitive), items whose keys
 * differ, a key `__proto__` (an assignment would set the prototype instead of a property).
 *
 * Identity is kept as structured clone keeps it within one message. A rebuilt row is a new object, so rows
 * that could be met twice travel as they are: a row repeated in the items, or a value that could refer to a
 * row. Columns take only values that cannot: primitives, Dates, and arrays of those (values shared between
 * rows stay shared: the columns cross in one message). A row's getter is read once; when a value read turns
 * out not to fit, the items travel as they are, and a getter read so far is read again by structured clone.
 *
 * Columns are certainly cloneable, so a thread sends them without a test clone: every value in them is a
 * primitive (not a symbol), a Date, or a plain array of those; proxies never qualify, at any level.
 * @internal
 */
export interface ItemColumns {
  /** The keys of every row, in their order. */
  readonly k: readonly string[];
  /** One array per key: the rows' values for it, in row order. */
  readonly c: readonly (readonly unknown[])[];
}

/** Rows in a chunk of fewer items than this travel as they are: building columns would save nothing. */
export const MIN_COLUMN_ROWS = 16;
/** Rows of more keys than this travel as they are (a wide row is rarely a query's row). */
const MAX_COLUMN_KEYS = 64;

/**
 * The columns of `items`, or undefined when they are not rows of one shape (see {@link ItemColumns}). Never
 * throws: should reading a row throw (a getter), the items travel as they are, and the post reports it as it
 * would have.
 */
export function toColumns(items: readonly unknown[]): ItemColumns | undefined {
  try {
    return columnsOf(items);
  } catch {
    return undefined;
  }
}

/**
 * The columns of `items` (see {@link toColumns}); may throw (a getter). `rows`: the rows of other arrays
 * crossing in the same message, which these must not repeat; these are added to it. @internal
 */
export function columnsOf(items: readonly unknown[], rows = new Set<unknown>()): ItemColumns | undefined {
  if (items.length < MIN_COLUMN_ROWS || !isPlainObject(items[0])) return undefined;
  const keys = Object.keys(items[0]);
  if (keys.length === 0 || keys.length > MAX_COLUMN_KEYS || keys.includes('__proto__')) return undefined;
  // The first row's values first: rows holding objects (most rows that do not qualify) end here, before the
  // walk over every row. They start the columns, so each getter is still read once.
  const first = items[0] as Record<string, unknown>;
  const columns: unknown[][] = [];
  for (let j = 0; j < keys.length; j++) {
    const value = first[keys[j] as string];
    if (!isFlat(value)) return undefined;
    columns.push([value]);
  }
  // Every other row's shape, without reading a value: a getter is then read once, as structured clone would.
  const before = rows.size;
  rows.add(items[0]);
  for (let i = 1; i < items.length; i++) {
    const item = items[i];
    if (!isPlainObject(item)) return undefined;
    const own = Object.keys(item);
    if (own.length !== keys.length) return undefined;
    for (let j = 0; j < keys.length; j++) if (own[j] !== keys[j]) return undefined;
    rows.add(item);
  }
  // A row repeated: structured clone would give the same object twice, columns two objects.
  if (rows.size - before !== items.length) return undefined;
  for (let j = 0; j < keys.length; j++) {
    const key = keys[j] as string;
    const column = columns[j] as unknown[];
    for (let i = 1; i < items.length; i++) {
      const value = (items[i] as Record<string, unknown>)[key];
      if (!isFlat(value)) return undefined;
      column.push(value);
    }
  }
  return { k: keys, c: columns };
}

/** A value that cannot refer to a row: a primitive, a Date, or a plain array of those. @internal */
export function isFlat(value: unknown): boolean {
  if (isLeaf(value)) return true;
  if (!Array.isArray(value) || types.isProxy(value)) return false;
  // The items before the keys: an array of rows is refused at its first item, before a key list is built.
  for (let i = 0; i < value.length; i++) if (!isLeaf(value[i])) return false;
  return isPlainArray(value);
}

function isLeaf(value: unknown): boolean {
  const type = typeof value;
  // Not a symbol or a function: they cannot cross, and the post of the items as they are reports that.
  if (type !== 'object') return type !== 'function' && type !== 'symbol';
  return value === null || types.isDate(value);
}

/**
 * An array structured clone copies as its items alone: prototype `Array.prototype`, not a proxy, no holes and
 * no other own enumerable property. @internal
 */
export function isPlainArray(value: unknown): value is unknown[] {
  if (!Array.isArray(value) || types.isProxy(value) || Object.getPrototypeOf(value) !== Array.prototype) {
    return false;
  }
  // Indices come first among the keys, in order: n keys, the last of them n − 1, are the indices 0 … n − 1
  // and nothing else.
  const keys = Object.keys(value);
  return (
    keys.length === value.length && (keys.length === 0 || keys[keys.length - 1] === String(value.length - 1))
  );
}

/** The rows of `columns`, rebuilt. */
export function fromColumns(columns: ItemColumns): unknown[] {
  const { k: keys, c: values } = columns;
  const rows: unknown[] = [];
  const count = values[0]?.length ?? 0;
  for (let i = 0; i < count; i++) {
    const row: Record<string, unknown> = {};
    for (let j = 0; j < keys.length; j++) row[keys[j] as string] = (values[j] as unknown[])[i];
    rows.push(row);
  }
  return rows;
}

/** An object structured clone copies as a plain object: prototype `Object.prototype` or null, not a proxy. @internal */
export function isPlainObject(value: unknown): value is object {
  if (typeof value !== 'object' || value === null || types.isProxy(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
