import { describe, expect, it } from 'vitest';
import { fromColumns, MIN_COLUMN_ROWS, toColumns } from './itemColumns.js';

const rows = (n: number, row: (i: number) => unknown): unknown[] =>
  Array.from({ length: n }, (_, i) => row(i));

/** What the receiving thread gets: the columns (or the items) after a structured clone, rebuilt. */
function across(items: unknown[]): unknown[] {
  const cols = toColumns(items);
  return cols === undefined ? structuredClone(items) : fromColumns(structuredClone(cols));
}

describe('stream items as columns', () => {
  it('sends rows of one shape as columns, and rebuilds them as structured clone would', () => {
    const items = rows(40, (i) => ({
      id: i,
      name: `row ${i}`,
      tags: ['a', i],
      at: new Date(i),
      none: undefined,
    }));
    expect(toColumns(items)?.k).toEqual(['id', 'name', 'tags', 'at', 'none']);
    const got = across(items);
    expect(got).toEqual(structuredClone(items));
    for (const row of got) {
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(Object.keys(row as object)).toEqual(['id', 'name', 'tags', 'at', 'none']);
    }
  });

  it('keeps the key order of the rows, integer-like keys included', () => {
    const items = rows(MIN_COLUMN_ROWS, (i) => ({ b: i, 2: 'two', a: i * 2, 1: 'one' }));
    const got = across(items) as Record<string, unknown>[];
    expect(got.map((row) => Object.keys(row))).toEqual(items.map((row) => Object.keys(row as object)));
    expect(got).toEqual(structuredClone(items));
  });

  it('rebuilds null-prototype rows as plain objects, as structured clone does', () => {
    const items = rows(MIN_COLUMN_ROWS, (i) => Object.assign(Object.create(null), { id: i }));
    expect(toColumns(items)).toBeDefined();
    const got = across(items);
    expect(got.every((row) => Object.getPrototypeOf(row) === Object.prototype)).toBe(true);
    expect(got).toEqual(structuredClone(items));
  });

  it('reads each getter once', () => {
    let reads = 0;
    const items = rows(MIN_COLUMN_ROWS, (i) => ({
      id: i,
      get computed() {
        reads++;
        return i * 10;
      },
    }));
    const got = across(items) as { computed: number }[];
    expect(reads).toBe(MIN_COLUMN_ROWS);
    expect(got.map((row) => row.computed)).toEqual(rows(MIN_COLUMN_ROWS, (i) => i * 10));
  });

  it('never throws: rows whose getter throws travel as they are, for the post to report', () => {
    const items = rows(MIN_COLUMN_ROWS, (i) => ({
      id: i,
      get broken(): number {
        throw new Error(`row ${i} cannot be read`);
      },
    }));
    expect(toColumns(items)).toBeUndefined();
  });

  it('keeps the identity structured clone keeps: a row repeated, a row another row refers to', () => {
    const repeated = rows(40, (i) => ({ id: i }));
    repeated[7] = repeated[3];
    const gotRepeated = across(repeated);
    expect(gotRepeated[7]).toBe(gotRepeated[3]);
    expect(gotRepeated).toEqual(structuredClone(repeated));

    const linked = rows(40, (i) => ({ id: i, parent: null as unknown }));
    (linked[5] as { parent: unknown }).parent = linked[4];
    const gotLinked = across(linked) as { parent: unknown }[];
    expect(gotLinked[5]?.parent).toBe(gotLinked[4]);

    const nested = rows(40, (i) => ({ id: i, meta: { up: null as unknown } }));
    (nested[9] as { meta: { up: unknown } }).meta.up = nested[2];
    const gotNested = across(nested) as { meta: { up: unknown } }[];
    expect(gotNested[9]?.meta.up).toBe(gotNested[2]);
  });

  it('keeps a value shared by rows shared', () => {
    const shared = { tag: 'x' };
    const items = rows(40, (i) => ({ id: i, tag: shared }));
    const got = across(items) as { tag: unknown }[];
    expect(got[0]?.tag).toBe(got[39]?.tag);
  });

  it.each([
    ['too few rows', rows(MIN_COLUMN_ROWS - 1, (i) => ({ id: i }))],
    ['primitives', rows(40, (i) => i)],
    ['arrays', rows(40, (i) => [i, i])],
    ['Dates', rows(40, (i) => new Date(i))],
    ['Maps', rows(40, (i) => new Map([[i, i]]))],
    [
      'class instances',
      rows(
        40,
        (i) =>
          new (class Row {
            constructor(readonly id: number) {}
          })(i),
      ),
    ],
    ['rows whose keys differ', rows(40, (i) => (i === 30 ? { id: i, extra: true } : { id: i }))],
    ['rows whose key order differs', rows(40, (i) => (i === 30 ? { b: 1, a: i } : { a: i, b: 1 }))],
    [
      'rows with a __proto__ key',
      rows(40, (i) => JSON.parse(`{"__proto__": {"polluted": ${i}}, "id": ${i}}`)),
    ],
    ['rows without keys', rows(40, () => ({}))],
    ['rows holding objects (which could refer to a row)', rows(40, (i) => ({ id: i, meta: { i } }))],
    ['rows holding arrays of objects', rows(40, (i) => ({ id: i, list: [{ i }] }))],
    [
      'a row repeated',
      (() => {
        const items = rows(40, (i) => ({ id: i }));
        items[39] = items[0];
        return items;
      })(),
    ],
  ])('sends %s as they are', (_what, items) => {
    expect(toColumns(items)).toBeUndefined();
  });

  it('never sets a prototype from a row key: a __proto__ row travels as it is, an own property', () => {
    const items = rows(40, (i) => JSON.parse(`{"__proto__": {"polluted": ${i}}, "id": ${i}}`));
    const got = across(items) as Record<string, unknown>[];
    expect(Object.getPrototypeOf(got[0])).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(got).toEqual(structuredClone(items));
  });
});
