import { describe, expect, it } from 'vitest';
import { type ItemColumns, MIN_COLUMN_ROWS } from './itemColumns.js';
import { fromResultColumns, resultColumns } from './resultColumns.js';

const rows = (n: number, row: (i: number) => unknown): unknown[] =>
  Array.from({ length: n }, (_, i) => row(i));

/** What the main thread gets: the columns (or the value) after a structured clone, rebuilt. */
function across(value: unknown): unknown {
  const cols = resultColumns(value);
  return cols === undefined ? structuredClone(value) : fromResultColumns(structuredClone(cols));
}

describe('a result array as columns', () => {
  const plain = (): unknown[] => rows(40, (i) => ({ id: i, name: `row ${i}` }));

  it('sends a plain array of rows as columns, rebuilt as structured clone would', () => {
    const value = plain();
    expect((resultColumns(value) as ItemColumns | undefined)?.k).toEqual(['id', 'name']);
    expect(across(value)).toStrictEqual(structuredClone(value));
  });

  it.each([
    [
      'an array with a hole',
      () => {
        const a = plain();
        delete a[5];
        return a;
      },
    ],
    ['an array with an own property besides its items', () => Object.assign(plain(), { total: 40 })],
    [
      'an array with a hole and an own property (as many keys as items)',
      () => {
        const a: unknown[] & { total?: number } = plain();
        delete a[5];
        a.total = 40;
        return a;
      },
    ],
    [
      'an Array subclass',
      () => {
        class List extends Array {}
        return List.from(plain());
      },
    ],
    ['too few rows', () => plain().slice(0, MIN_COLUMN_ROWS - 1)],
    ['a typed array', () => new Float64Array(40)],
    [
      'a proxy whose traps throw',
      () =>
        new Proxy(plain(), {
          ownKeys() {
            throw new Error('no keys');
          },
        }),
    ],
  ])('sends %s as it is', (_what, make) => {
    expect(resultColumns(make())).toBeUndefined();
  });
});

describe('a result object with arrays of rows as columns', () => {
  const list = (n = 40, from = 0): unknown[] => rows(n, (i) => ({ id: from + i, name: `row ${from + i}` }));

  it('sends a page — arrays of rows beside flat values — as columns, rebuilt as structured clone would', () => {
    const page = {
      total: 80,
      rows: list(),
      at: new Date(5),
      tags: ['a', 1],
      more: list(40, 40),
      none: undefined,
    };
    const cols = resultColumns(page);
    expect(cols).toMatchObject({ k: ['total', 'rows', 'at', 'tags', 'more', 'none'], r: [1, 4] });
    const got = across(page) as Record<string, unknown>;
    expect(got).toStrictEqual(structuredClone(page));
    expect(Object.keys(got)).toEqual(Object.keys(page));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });

  it('keeps integer-like keys in their order, and rebuilds a null-prototype page as a plain object', () => {
    const page = Object.assign(Object.create(null), { b: 1, 2: list(), a: 'x', 1: 'one' });
    const got = across(page) as Record<string, unknown>;
    expect(resultColumns(page)).toBeDefined();
    expect(Object.keys(got)).toEqual(Object.keys(page));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(got).toStrictEqual(structuredClone(page));
  });

  it('keeps a row met in two arrays one object, as structured clone does', () => {
    const first = list();
    const second = list();
    second[3] = first[7];
    const got = across({ first, second }) as { first: unknown[]; second: unknown[] };
    expect(got.second[3]).toBe(got.first[7]);
  });

  it.each([
    ['an object without an array of rows', () => ({ total: 1, name: 'x' })],
    ['a page holding an object (which could refer to a row)', () => ({ rows: list(), meta: { page: 1 } })],
    ['a page holding a short list of rows', () => ({ rows: list(), few: list(MIN_COLUMN_ROWS - 1) })],
    ['a page with a __proto__ key', () => Object.assign(JSON.parse('{"__proto__": 1}'), { rows: list() })],
    [
      'a page whose list has a hole',
      () => {
        const holey = list();
        delete holey[3];
        return { rows: holey };
      },
    ],
    [
      'a class instance',
      () =>
        new (class Page {
          rows = list();
        })(),
    ],
    ['a proxy', () => new Proxy({ rows: list() }, {})],
    ['a Map', () => new Map([['rows', list()]])],
    [
      'a page of too many keys',
      () =>
        Object.fromEntries(
          rows(40, (i) => [`k${i}`, i])
            .map((e) => e as [string, unknown])
            .concat([['rows', list()]]),
        ),
    ],
  ])('sends %s as it is', (_what, make) => {
    expect(resultColumns(make())).toBeUndefined();
  });
});
