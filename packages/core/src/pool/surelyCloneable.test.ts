import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { surelyCloneable } from './surelyCloneable.js';

function clones(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

describe('surelyCloneable', () => {
  it('accepts plain data: primitives, plain and null-prototype objects, arrays, dates, binary', () => {
    for (const value of [
      1,
      'a',
      null,
      undefined,
      10n,
      { a: 1, b: [1, 'x', { c: null }] },
      Object.assign(Object.create(null), { x: 1 }),
      Object.assign(new Array(3), { 0: 1, 2: 3 }), // a hole
      new Date(0),
      new Uint8Array(4),
      new ArrayBuffer(8),
      JSON.parse('{"__proto__": {"x": 1}}'),
    ]) {
      expect(surelyCloneable(value)).toBe(true);
    }
  });

  it('is unsure of what structured clone refuses or what it would have to look into', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    for (const value of [
      () => 1,
      Symbol('s'),
      { fn: () => 1 },
      [1, Symbol('s')],
      new Proxy({}, {}),
      new (class Point {
        x = 1;
      })(),
      new Map(),
      Promise.resolve(1),
      cyclic,
      deep,
      Array.from({ length: 3000 }, () => ({})),
    ]) {
      expect(surelyCloneable(value)).toBe(false);
    }
  });

  it('never says "surely" of a value structured clone refuses (property)', () => {
    const withFunctions = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.anything(),
        fc.constant(() => 1),
        fc.constant(Symbol('x')),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(withFunctions, (value) => {
        if (surelyCloneable(value)) expect(clones(value)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
