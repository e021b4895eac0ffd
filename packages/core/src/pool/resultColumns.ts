/**
 * A pooled handler's result, with its arrays of rows as columns (itemColumns.ts), for the trip back to the
 * main thread: structured clone rebuilds a row there key by key, columns with plain stores, in about half
 * the main thread's time; and columns are certainly cloneable, so the thread sends them without a test
 * clone. Two shapes qualify — what list and report queries return:
 *
 * - an array of rows: a plain array of {@link MIN_COLUMN_ROWS} or more rows of one shape, without holes or
 *   other own enumerable properties (structured clone would carry those, columns would not);
 * - a plain object (a page, `{ rows, total }`) whose values are such arrays or flat values (primitives,
 *   Dates, arrays of those), at least one of them an array of rows, no key `__proto__`.
 *
 * What the caller gets is what structured clone would give it, identity included: no row appears twice,
 * across the arrays either, and nothing else in the value can refer to a row. Anything else crosses as it is.
 * @internal
 */
import {
  columnsOf,
  fromColumns,
  type ItemColumns,
  isFlat,
  isPlainArray,
  isPlainObject,
  MIN_COLUMN_ROWS,
} from './itemColumns.js';

/** An object result: its keys, its values in their order, and which values are arrays of rows as columns. */
export interface ObjectColumns {
  readonly k: readonly string[];
  /** The values; those at the indices in `r` are {@link ItemColumns}. */
  readonly v: readonly unknown[];
  readonly r: readonly number[];
}

/** A result with its rows as columns: an array's, or an object's (see the module's comment). */
export type ResultColumns = ItemColumns | ObjectColumns;

/** The deepest a result {@link resultColumns} takes can be: a page of an array of rows holding arrays. */
export const RESULT_COLUMNS_DEPTH = 4;
/** Objects of more keys than this cross as they are (a page has a few). */
const MAX_OBJECT_KEYS = 32;

/** The columns of `value`, or undefined when it does not qualify (see the module's comment). Never throws. */
export function resultColumns(value: unknown): ResultColumns | undefined {
  try {
    if (Array.isArray(value)) return rowColumns(value, new Set());
    if (!isPlainObject(value) || !holdsLongArray(value as Record<string, unknown>)) return undefined;
    return objectColumns(value as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

/** Whether some value of `value` is an array long enough to be rows: most results have none, and end here. */
function holdsLongArray(value: Record<string, unknown>): boolean {
  for (const key in value) {
    const entry = value[key];
    if (Array.isArray(entry) && entry.length >= MIN_COLUMN_ROWS) return true;
  }
  return false;
}

/** The columns of `value` when it is a plain array of rows, its rows added to `rows` (see columnsOf). */
function rowColumns(value: unknown, rows: Set<unknown>): ItemColumns | undefined {
  if (!Array.isArray(value) || value.length < MIN_COLUMN_ROWS || !isPlainArray(value)) return undefined;
  return columnsOf(value, rows);
}

function objectColumns(value: Record<string, unknown>): ObjectColumns | undefined {
  const keys = Object.keys(value);
  if (keys.length > MAX_OBJECT_KEYS || keys.includes('__proto__')) return undefined;
  const values: unknown[] = [];
  const columnsAt: number[] = [];
  // The rows of every array so far: a row in two arrays would come back as two objects.
  const rows = new Set<unknown>();
  for (let i = 0; i < keys.length; i++) {
    const entry = value[keys[i] as string];
    if (isFlat(entry)) values.push(entry);
    else {
      const columns = rowColumns(entry, rows);
      if (columns === undefined) return undefined;
      values.push(columns);
      columnsAt.push(i);
    }
  }
  return columnsAt.length === 0 ? undefined : { k: keys, v: values, r: columnsAt };
}

/** The result `columns` stand for, rebuilt. */
export function fromResultColumns(columns: ResultColumns): unknown {
  if ('c' in columns) return fromColumns(columns);
  const { k: keys, v: values, r: columnsAt } = columns;
  const result: Record<string, unknown> = {};
  let next = 0;
  for (let i = 0; i < keys.length; i++) {
    if (columnsAt[next] === i) {
      result[keys[i] as string] = fromColumns(values[i] as ItemColumns);
      next++;
    } else result[keys[i] as string] = values[i];
  }
  return result;
}
