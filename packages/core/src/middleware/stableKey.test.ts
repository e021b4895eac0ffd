import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stableKey } from './stableKey.js';

/** The same value with every object's keys in reverse insertion order. */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).reverse()) {
    // defineProperty: an own '__proto__' key (JSON.parse makes them) must stay a key, not set the prototype.
    Object.defineProperty(out, key, {
      value: reversed((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** JSON values with -0 read as 0, which JSON (and the key) cannot tell apart. */
const jsonValue = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);

describe('stableKey', () => {
  it('gives objects with keys in another order the same key, nested in objects and arrays', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'x' } };
    const b = { a: { c: 'x', d: [1, { x: 1, y: 2 }] }, b: 1 };
    expect(stableKey(a)).toBe(stableKey(b));
    expect(stableKey(a)).toBe('{"a":{"c":"x","d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it('keeps array order: [1, 2] and [2, 1] differ', () => {
    expect(stableKey([1, 2])).not.toBe(stableKey([2, 1]));
  });

  it('tells types apart: 1, "1", 1n, true, "true", null, "null", undefined', () => {
    const keys = [1, '1', 1n, true, 'true', null, 'null', undefined, 'undefined', Number.NaN, 'NaN'].map(
      stableKey,
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('keys BigInts by value, beyond the safe integer range', () => {
    expect(stableKey({ n: 2n ** 70n })).toBe(stableKey({ n: 2n ** 70n }));
    expect(stableKey({ n: 2n ** 70n })).not.toBe(stableKey({ n: 2n ** 70n + 1n }));
  });

  it('keys Dates by their time, and not like the number or the ISO string', () => {
    const at = new Date('2024-01-02T03:04:05.678Z');
    expect(stableKey({ at })).toBe(stableKey({ at: new Date(at.getTime()) }));
    expect(stableKey({ at })).not.toBe(stableKey({ at: new Date(at.getTime() + 1) }));
    expect(stableKey(at)).not.toBe(stableKey(at.getTime()));
    expect(stableKey(at)).not.toBe(stableKey(at.toISOString()));
    expect(stableKey(new Date(Number.NaN))).toBe('Date(NaN)');
  });

  it('tells a key holding undefined from a missing key', () => {
    expect(stableKey({ a: 1, b: undefined })).not.toBe(stableKey({ a: 1 }));
    expect(stableKey({ a: 1, b: undefined })).toBe(stableKey({ b: undefined, a: 1 }));
  });

  it('keys what structured clone carries to a thread: holes, named array properties, -0', () => {
    // A handler in a thread can tell each pair apart (`0 in list`, `list.admin`, `Object.is(n, -0)`).
    expect(stableKey([undefined])).not.toBe(stableKey(new Array(1)));
    expect(stableKey([1, 2])).not.toBe(stableKey(Object.assign([1, 2], { admin: true })));
    expect(stableKey(Object.assign([1], { b: 1, a: 2 }))).toBe(stableKey(Object.assign([1], { a: 2, b: 1 })));
    expect(stableKey(Object.assign([1], { a: () => 1 }))).toBeUndefined();
    expect(stableKey({ n: -0 })).not.toBe(stableKey({ n: 0 }));
    expect(stableKey([0])).toBe('[0]');
  });

  it('keys Maps and Sets by their entries, whatever their insertion order', () => {
    expect(
      stableKey(
        new Map<unknown, unknown>([
          ['a', 1],
          [2, { y: 1, x: 2 }],
        ]),
      ),
    ).toBe(
      stableKey(
        new Map<unknown, unknown>([
          [2, { x: 2, y: 1 }],
          ['a', 1],
        ]),
      ),
    );
    expect(stableKey(new Set([1, 'b', 3]))).toBe(stableKey(new Set([3, 1, 'b'])));
    expect(stableKey(new Set([1]))).not.toBe(stableKey([1]));
    expect(stableKey(new Map([[1, 2]]))).not.toBe(stableKey([[1, 2]]));
  });

  it('keys typed arrays by type and contents; a Buffer as the Uint8Array it becomes in a thread', () => {
    expect(stableKey(new Uint8Array([1, 2]))).toBe(stableKey(Buffer.from([1, 2])));
    expect(stableKey(new Uint8Array([1, 2]))).not.toBe(stableKey(new Int8Array([1, 2])));
    expect(stableKey(new Uint8Array([1, 2]))).not.toBe(stableKey([1, 2]));
  });

  it('keys objects without a prototype like plain ones', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    expect(stableKey(bare)).toBe(stableKey({ a: 1 }));
  });

  it("keys an own '__proto__' key (as JSON.parse makes) like any other", () => {
    const parsed = JSON.parse('{"__proto__":{"x":1},"a":2}') as unknown;
    expect(stableKey(parsed)).toBe('{"__proto__":{"x":1},"a":2}');
    expect(stableKey(parsed)).not.toBe(stableKey({ a: 2 }));
  });

  it('accepts a value shared twice that is not a cycle', () => {
    const shared = { x: 1 };
    expect(stableKey({ a: shared, b: [shared, shared] })).toBe('{"a":{"x":1},"b":[{"x":1},{"x":1}]}');
  });

  it('refuses, without throwing, what it cannot key: functions, symbols, cycles, class instances', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cyclicArray: unknown[] = [1];
    cyclicArray.push([cyclicArray]);
    const cyclicMap = new Map<string, unknown>();
    cyclicMap.set('m', cyclicMap);
    class Point {
      constructor(readonly x: number) {}
    }
    const throwing = {
      get boom(): never {
        throw new Error('getter');
      },
    };
    for (const input of [
      () => 1,
      { f: () => 1 },
      Symbol('s'),
      { s: Symbol('s') },
      cyclic,
      cyclicArray,
      cyclicMap,
      new Point(1),
      /re/,
      new Error('e'),
      new DataView(new ArrayBuffer(2)),
      throwing,
    ]) {
      expect(stableKey(input)).toBeUndefined();
    }
  });

  it('gives equal keys exactly to deep-equal JSON values (property-based)', () => {
    fc.assert(
      fc.property(jsonValue, jsonValue, (a, b) => {
        expect(stableKey(a) === stableKey(b)).toBe(isDeepStrictEqual(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it('ignores key order in any JSON value (property-based)', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(stableKey(reversed(value))).toBe(stableKey(value));
      }),
      { numRuns: 5000 },
    );
  });
});
