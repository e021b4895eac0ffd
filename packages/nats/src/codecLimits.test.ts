import { isCqrsError } from '@cqrs-pool/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from './codecLimits.js';
import { createTaggedJson, taggedJson } from './taggedJson.js';

/** `{ c: { c: … } }`, `levels` objects deep. */
function nested(levels: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let at = root;
  for (let i = 1; i < levels; i++) at = at.c = {};
  return root;
}

const text = (s: string) => Buffer.from(s, 'utf8');
const refusal = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
};

describe('codec limits (tagged JSON)', () => {
  it('default to 256 levels, 4,096 bigint digits and 2,048 numeric keys', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxDepth: 256, maxBigIntDigits: 4096, maxNumericKeys: 2048 });
  });

  it('refuse a value nested deeper than maxDepth both ways, with a RangeError naming the limit', () => {
    expect(taggedJson.decode(taggedJson.encode(nested(256)))).toEqual(nested(256));
    const encoding = refusal(() => taggedJson.encode(nested(257)));
    expect(encoding).toBeInstanceOf(RangeError);
    expect(encoding.message).toMatch(/deeper than 256 levels.*maxDepth/);
    // As the attacker sent it: 3000 levels, and 200,000 (a megabyte) (JSON.parse is iterative; the walk stops at 256).
    for (const levels of [257, 3000, 200_000]) {
      const body = text(`${'{"c":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`);
      const decoding = refusal(() => taggedJson.decode(body));
      expect(decoding, String(levels)).toBeInstanceOf(RangeError);
      expect(decoding.message).toMatch(/maxDepth/);
    }
    expect(() => taggedJson.decode(text(`${'['.repeat(300)}${']'.repeat(300)}`))).toThrow(/maxDepth/);
  });

  it('count tag wrappers as levels, the same on both sides', () => {
    const shallow = createTaggedJson({ maxDepth: 4 });
    const roomy = createTaggedJson({ maxDepth: 1000 });
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'medium' },
        fc.oneof(fc.integer(), fc.constant(undefined), fc.bigInt(), fc.date(), fc.double(), fc.string()),
        tie('array'),
        tie('object'),
        tie('map'),
        tie('set'),
      ),
      array: fc.array(tie('value'), { maxLength: 3 }),
      object: fc.dictionary(fc.constantFrom('a', '$t', 'v'), tie('value'), { maxKeys: 3 }),
      map: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 2 }).map((e) => new Map(e)),
      set: fc.array(tie('value'), { maxLength: 2 }).map((e) => new Set(e)),
    }));
    const seen = { refused: 0, accepted: 0 };
    fc.assert(
      fc.property(value, (v) => {
        const bytes = roomy.encode(v);
        const encodes = !(() => {
          try {
            shallow.encode(v);
          } catch {
            return true;
          }
          return false;
        })();
        let decodes = true;
        try {
          shallow.decode(bytes);
        } catch {
          decodes = false;
        }
        expect(encodes).toBe(decodes);
        seen[encodes ? 'accepted' : 'refused']++;
      }),
      { numRuns: 3000 },
    );
    // Both sides of the limit were exercised.
    expect(seen.refused).toBeGreaterThan(20);
    expect(seen.accepted).toBeGreaterThan(20);
  });

  it('carry values up to the highest maxDepth allowed (1,000) without running out of stack', () => {
    const codec = createTaggedJson({ maxDepth: 1000 });
    expect(codec.decode(codec.encode(nested(1000)))).toEqual(nested(1000));
    expect(() => codec.encode(nested(1001))).toThrow(RangeError);
  });

  it('refuse a bigint over maxBigIntDigits both ways, and bigint text that is not decimal digits', () => {
    const longest = 10n ** 4095n; // 4096 digits
    expect(taggedJson.decode(taggedJson.encode(-longest))).toBe(-longest);
    expect(() => taggedJson.encode(longest * 10n)).toThrow(/4097 digits.*maxBigIntDigits/);
    expect(() => taggedJson.encode(2n ** 1_000_000n)).toThrow(/maxBigIntDigits/);
    expect(() => taggedJson.decode(text(`{"$t":"b","v":"1${'0'.repeat(4096)}"}`))).toThrow(/maxBigIntDigits/);
    // The attacker's megabyte of digits: refused after a length check, never parsed.
    expect(() => taggedJson.decode(text(`{"$t":"b","v":"${'7'.repeat(1_000_000)}"}`))).toThrow(
      /1000000 digits/,
    );
    for (const v of ['0x10', ' 1', '', '1e3', '--1', '1n']) {
      expect(() => taggedJson.decode(text(`{"$t":"b","v":${JSON.stringify(v)}}`)), v).toThrow(TypeError);
    }
    const wide = createTaggedJson({ maxBigIntDigits: 10_000 });
    expect(wide.decode(wide.encode(longest * 10n))).toBe(longest * 10n);
  });

  it('refuse more numeric Map keys and Set members than maxNumericKeys, counting strings not', () => {
    const numbers = Array.from({ length: 2048 }, (_, i) => i * 65_537);
    const fits = {
      set: new Set(numbers.slice(0, 1000)),
      map: new Map(numbers.slice(1000).map((n) => [n, n])),
    };
    expect(taggedJson.decode(taggedJson.encode(fits))).toEqual(fits);
    const over = { ...fits, one: new Set([1n]) };
    expect(() => taggedJson.encode(over)).toThrow(/maxNumericKeys/);
    const body = text(`{"$t":"s","v":[${Array.from({ length: 2049 }, (_, i) => i).join(',')}]}`);
    expect(() => taggedJson.decode(body)).toThrow(/more than 2048.*maxNumericKeys/);
    const strings = new Set(Array.from({ length: 10_000 }, (_, i) => `k${i}`));
    expect(taggedJson.decode(taggedJson.encode(strings))).toEqual(strings);
    // Map values are not keys.
    const values = new Map(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    expect(taggedJson.decode(taggedJson.encode(values))).toEqual(values);
  });

  it('rebuild errors without capturing a stack of the decoder', () => {
    const err = taggedJson.decode(text('{"$t":"e","name":"TypeError","message":"bad"}')) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('TypeError');
    expect(err.stack).toBe('TypeError: bad');
  });

  it('refuse limits that are not positive integers, naming the option', () => {
    for (const limits of [
      { maxDepth: 0 },
      { maxDepth: 1001 },
      { maxBigIntDigits: 1.5 },
      { maxNumericKeys: -1 },
    ]) {
      const err = refusal(() => createTaggedJson(limits));
      expect(isCqrsError(err, 'INVALID_REGISTRATION'), JSON.stringify(limits)).toBe(true);
      expect(err.message).toContain(Object.keys(limits)[0]);
    }
  });
});
