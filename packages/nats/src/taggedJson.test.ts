import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { taggedJson } from './taggedJson.js';

const roundTrip = (value: unknown): unknown => taggedJson.decode(taggedJson.encode(value));

// What the codec promises to carry: JSON plus what structured clone would keep between threads.
const leaf = fc.oneof(
  fc.string(),
  fc.double(), // NaN, ±Infinity and -0 included
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date(), // invalid dates included
  fc.uint8Array().map((a) => new Uint8Array(a)),
  fc.uint8Array().map((a) => Buffer.from(a)),
  fc.float64Array(),
  fc.int32Array(),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  // Keys a tag-based format must not misread: `$t`, `v`, `__proto__`.
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$t', 'v', '__proto__', 'k')), tie('value'), {
    maxKeys: 5,
    // A null-prototype object arrives as a plain one (as with structured clone): not a loss worth a tag.
    noNullPrototype: true,
  }),
  map: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
  set: fc.array(tie('value'), { maxLength: 3 }).map((items) => new Set(items)),
}));

describe('taggedJson', () => {
  it('round-trips any mix of JSON values, undefined, NaN/±Infinity/-0, bigint, Date, binary, Map and Set', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(roundTrip(v)).toStrictEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps undefined in arrays and fields, and a top-level undefined (a command returning nothing)', () => {
    expect(roundTrip([undefined, 1])).toStrictEqual([undefined, 1]);
    expect(roundTrip({ a: undefined })).toStrictEqual({ a: undefined });
    expect(roundTrip(undefined)).toBeUndefined();
  });

  it('keeps a Buffer a Buffer and a Uint8Array a Uint8Array, including a view into a larger buffer', () => {
    const big = new Uint8Array([9, 8, 7, 6, 5]);
    const view = big.subarray(1, 3);
    const decoded = roundTrip({ view, buf: Buffer.from([1, 2]) }) as { view: Uint8Array; buf: Buffer };
    expect(decoded.view).toStrictEqual(new Uint8Array([8, 7]));
    expect(Buffer.isBuffer(decoded.buf)).toBe(true);
    expect(Buffer.isBuffer(decoded.view)).toBe(false);
  });

  it('never reads a user object with a $t field as a tag', () => {
    const tricky = { $t: 'd', v: 0 };
    expect(roundTrip(tricky)).toStrictEqual(tricky);
    expect(roundTrip([{ $t: 'u' }])).toStrictEqual([{ $t: 'u' }]);
  });

  it('keeps __proto__ a plain field and pollutes no prototype', () => {
    const decoded = taggedJson.decode(
      Buffer.from('{"__proto__":{"polluted":true},"a":{"__proto__":{"x":1}}}'),
    ) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(decoded.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toEqual({ polluted: true });
  });

  it('carries class instances as their fields and honours toJSON, like structured clone and JSON', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    expect(roundTrip(new Point(1, 2))).toStrictEqual({ x: 1, y: 2 });
    expect(roundTrip({ money: { toJSON: () => '12.50' } })).toStrictEqual({ money: '12.50' });
    expect(roundTrip(/a+b/gi)).toStrictEqual(/a+b/gi);
    const err = roundTrip(new RangeError('out')) as Error;
    expect(err.name).toBe('RangeError');
    expect(err.message).toBe('out');
  });

  it('writes plain JSON data as JSON.stringify does: tags only where JSON falls short', () => {
    // -0 and a `$t` key are where tagged JSON and JSON part ways.
    const tagFree = (v: unknown): boolean =>
      typeof v === 'number'
        ? !Object.is(v, -0)
        : typeof v !== 'object' || v === null
          ? true
          : Object.entries(v).every(([k, child]) => k !== '$t' && tagFree(child));
    fc.assert(
      fc.property(fc.jsonValue().filter(tagFree), (v) => {
        expect(Buffer.from(taggedJson.encode(v)).toString('utf8')).toBe(JSON.stringify(v));
        expect(roundTrip(v)).toStrictEqual(v);
      }),
      { numRuns: 300 },
    );
    expect(Buffer.from(taggedJson.encode({ a: [1, -0] })).toString('utf8')).toBe(
      '{"a":[1,{"$t":"n","v":"-0"}]}',
    );
  });

  it('passes on the error of a getter that throws, as JSON.stringify would', () => {
    const hostile = {
      get x(): number {
        throw new Error('boom');
      },
    };
    expect(() => taggedJson.encode(hostile)).toThrow('boom');
    expect(() => taggedJson.encode([hostile])).toThrow('boom');
  });

  it('refuses functions, symbols and cycles with a TypeError', () => {
    expect(() => taggedJson.encode({ f: () => 1 })).toThrow(TypeError);
    expect(() => taggedJson.encode([Symbol('s')])).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => taggedJson.encode(cyclic)).toThrow(TypeError);
  });

  it('refuses malformed tags and bytes that are not JSON with an error, never a wrong value', () => {
    for (const text of ['{"$t":"zz"}', '{"$t":"b","v":1}', '{"$t":"x","k":"Nope","v":""}', '{oops', '']) {
      expect(() => taggedJson.decode(Buffer.from(text)), text).toThrow();
    }
  });
});
