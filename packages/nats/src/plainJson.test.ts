import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPlainJson, plainJson } from './plainJson.js';

const roundTrip = (value: unknown): unknown => plainJson.decode(plainJson.encode(value));
const text = (s: string) => Buffer.from(s, 'utf8');

describe('plainJson', () => {
  it('round-trips any JSON value exactly, `$t` keys included, with id json/1', () => {
    expect(plainJson.id).toBe('json/1');
    // Minus zero arrives as 0 (as with JSON.stringify); integers beyond 2^53 are refused (below).
    const exact = (v: unknown): boolean =>
      typeof v === 'number'
        ? !Object.is(v, -0) && (!Number.isInteger(v) || Number.isSafeInteger(v))
        : typeof v !== 'object' || v === null || Object.values(v).every(exact);
    const json = fc.jsonValue().filter(exact);
    fc.assert(
      fc.property(json, (v) => {
        expect(roundTrip(v)).toStrictEqual(v);
      }),
      { numRuns: 300 },
    );
    const tagged = { $t: 'u', v: [{ $t: 'b', v: '12' }] };
    expect(plainJson.decode(plainJson.encode(tagged))).toStrictEqual(tagged);
    expect(Buffer.from(plainJson.encode(tagged)).toString()).toBe(JSON.stringify(tagged));
  });

  it('writes what JSON.stringify writes for dates, toJSON, class instances and missing fields', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    expect(
      roundTrip({ at: new Date(0), p: new Point(1, 2), gone: undefined, money: { toJSON: () => '1.50' } }),
    ).toStrictEqual({
      at: '1970-01-01T00:00:00.000Z',
      p: { x: 1, y: 2 },
      money: '1.50',
    });
    expect(roundTrip(undefined)).toBeNull();
  });

  it('refuses what JSON cannot carry exactly instead of changing it', () => {
    const refused: [string, unknown, RegExp][] = [
      ['bigint', { n: 2n ** 64n }, /bigint cannot be sent as plain JSON \(at 'n'\).*decimal string/],
      ['unsafe integer', { n: 2 ** 60 }, /integer 1152921504606847000 \(at 'n'\) is beyond/],
      ['NaN', [Number.NaN], /NaN cannot be written as JSON/],
      ['Infinity', { x: Number.POSITIVE_INFINITY }, /Infinity cannot be written/],
      ['Map', { m: new Map([[1, 2]]) }, /a Map cannot be sent as plain JSON/],
      ['Set', new Set([1]), /a Set cannot/],
      ['Uint8Array', { b: new Uint8Array([1]) }, /a Uint8Array cannot/],
      ['Buffer', { b: Buffer.from('x') }, /a Buffer cannot/],
      ['RegExp', /x/, /a RegExp cannot/],
      ['Error', { e: new TypeError('x') }, /a TypeError cannot/],
      ['undefined in an array', [1, undefined], /undefined in an array/],
      ['function', { f: () => 1 }, /a function cannot/],
      ['symbol', { s: Symbol('s') }, /a symbol cannot/],
    ];
    for (const [what, value, message] of refused)
      expect(() => plainJson.encode(value), what).toThrow(message);
    expect(
      roundTrip({ n: Number.MAX_SAFE_INTEGER, m: -Number.MAX_SAFE_INTEGER, f: 1.5e300 / 1e300 }),
    ).toEqual({
      n: Number.MAX_SAFE_INTEGER,
      m: -Number.MAX_SAFE_INTEGER,
      f: 1.5,
    });
  });

  it('refuses on decode integers that JavaScript has rounded, however they were written', () => {
    for (const big of ['9007199254740993', '-9007199254740993', '1e20', '12345678901234567890']) {
      expect(() => plainJson.decode(text(`{"id":${big}}`)), big).toThrow(/beyond ±\(2\^53 − 1\)/);
    }
    expect(plainJson.decode(text('{"id":"9007199254740993","x":9007199254740991}'))).toEqual({
      id: '9007199254740993',
      x: 9_007_199_254_740_991,
    });
  });

  it('bounds the nesting depth both ways, and keeps __proto__ a plain key', () => {
    const shallow = createPlainJson({ maxDepth: 3 });
    expect(shallow.decode(shallow.encode({ a: { b: [1] } }))).toEqual({ a: { b: [1] } });
    expect(() => shallow.encode({ a: { b: [[1]] } })).toThrow(/deeper than 3 levels/);
    expect(() => shallow.decode(text('{"a":{"b":[[1]]}}'))).toThrow(/deeper than 3 levels/);
    expect(() => plainJson.decode(text(`${'['.repeat(100_000)}${']'.repeat(100_000)}`))).toThrow(/maxDepth/);
    const decoded = plainJson.decode(text('{"__proto__":{"polluted":true}}')) as Record<string, unknown>;
    expect(decoded.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
