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

  it('is unsure of what structured clone refuses, or what it would have to look into, or what nests deep', () => {
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
      deep,
    ]) {
      expect(surelyCloneable(value)).toBe(false);
    }
  });

  it('vouches for large plain data too, each object once: many rows, shared and cyclic objects', () => {
    // Past a few thousand objects the quick walk gives up; a second walk then visits each object once, as
    // the clone writes each once (a back-reference after that). Unsure here means a full test clone.
    const rows = Array.from({ length: 10_000 }, (_, i) => ({ id: i, tags: [i, 'x'], at: new Date(i) }));
    expect(surelyCloneable(rows)).toBe(true);
    // Shared: 24 levels of two references to the next, 2^24 paths for a walk that does not remember.
    let shared: unknown = { leaf: true };
    for (let i = 0; i < 24; i++) shared = { left: shared, right: shared };
    expect(surelyCloneable(shared)).toBe(true);
    expect(clones(shared)).toBe(true);
    const cyclic = Array.from({ length: 5000 }, (_, i) => ({ i, list: undefined as unknown }));
    for (const row of cyclic) row.list = cyclic;
    expect(surelyCloneable(cyclic)).toBe(true);
    expect(clones(cyclic)).toBe(true);
    const small: Record<string, unknown> = { a: 1 };
    small.self = small;
    expect(surelyCloneable(small)).toBe(true);
    // A chain is as deep for the clone as it is long: unsure past the walk's depth, however it is walked.
    const chain = Array.from({ length: 100 }, (_, i) => ({ i, next: undefined as unknown }));
    for (const [i, row] of chain.entries()) row.next = chain[(i + 1) % chain.length];
    expect(surelyCloneable(chain)).toBe(false);
    // And still unsure of the one thing it cannot vouch for, however far in.
    const last = [...rows, { fn: () => 1 }];
    expect(surelyCloneable(last)).toBe(false);
    const sharedBad: Record<string, unknown> = { leaf: Symbol('x') };
    let around: unknown = sharedBad;
    for (let i = 0; i < 24; i++) around = { left: around, right: around };
    expect(surelyCloneable(around)).toBe(false);
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
