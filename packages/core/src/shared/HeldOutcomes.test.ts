import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeldOutcomes, HeldOutcomesLine, jsonExact } from './HeldOutcomes.js';

/** What a thread's outcome becomes on the main thread once its thread is gone: through a line and back. */
function roundTrip(value: unknown): unknown[] | undefined {
  const held = new HeldOutcomes(1);
  const line = HeldOutcomesLine.claim(held.buffer, 7) as HeldOutcomesLine;
  if (!line.add(3, 9, 1, value)) return undefined;
  return held.takeFrom(7)?.v;
}

describe('HeldOutcomes', () => {
  it('gives back, for the thread gone, the outcomes its line held: slot, generation, flags, value', () => {
    const held = new HeldOutcomes(3);
    const first = HeldOutcomesLine.claim(held.buffer, 11) as HeldOutcomesLine;
    const second = HeldOutcomesLine.claim(held.buffer, 12) as HeldOutcomesLine;
    expect(first.add(4, 1, 3, { id: 1, name: 'é' })).toBe(true);
    expect(first.add(5, 2, 8, undefined)).toBe(true);
    expect(first.add(6, 3, 1, new Map([[1, 2n]]))).toBe(true);
    expect(second.add(9, 9, 1, 'other thread')).toBe(true);
    expect(held.takeFrom(11)).toEqual({
      c: [4, 5, 6],
      g: [1, 2, 3],
      f: [3, 8, 1],
      v: [{ id: 1, name: 'é' }, undefined, new Map([[1, 2n]])],
    });
    // Read once: the line is free again, and the other thread's is untouched.
    expect(held.takeFrom(11)).toBeUndefined();
    expect(held.takeFrom(12)?.v).toEqual(['other thread']);
  });

  it('finds a call’s outcome on the lines of threads that are gone, never on a live thread’s', () => {
    const held = new HeldOutcomes(2);
    const dead = HeldOutcomesLine.claim(held.buffer, 21) as HeldOutcomesLine;
    const live = HeldOutcomesLine.claim(held.buffer, 22) as HeldOutcomesLine;
    dead.add(4, 1, 3, 'from the dead');
    live.add(5, 1, 3, 'from the living');
    const alive = (threadId: number) => threadId === 22;
    expect(held.find(4, 1, alive)).toEqual({ f: 3, v: 'from the dead' });
    // Another generation of the slot: another call.
    expect(held.find(4, 2, alive)).toBeUndefined();
    expect(held.find(5, 1, alive)).toBeUndefined();
    // Found, not taken: the line is read and freed once the thread's port is read to its end.
    expect(held.takeFrom(21)?.v).toEqual(['from the dead']);
  });

  it('forgets what a thread cleared (it posted those outcomes), and frees a line with nothing on it', () => {
    const held = new HeldOutcomes(1);
    const line = HeldOutcomesLine.claim(held.buffer, 5) as HeldOutcomesLine;
    expect(HeldOutcomesLine.claim(held.buffer, 6)).toBeUndefined();
    line.add(1, 1, 1, 42);
    line.clear();
    expect(held.takeFrom(5)).toBeUndefined();
    expect(HeldOutcomesLine.claim(held.buffer, 6)).toBeDefined();
  });

  it('refuses what does not fit, or cannot be serialized: the thread then posts what it holds', () => {
    const held = new HeldOutcomes(1);
    const line = HeldOutcomesLine.claim(held.buffer, 5) as HeldOutcomesLine;
    expect(line.add(1, 1, 1, 'x'.repeat(40_000))).toBe(false);
    expect(line.add(1, 1, 1, { fn: () => 1 })).toBe(false);
    expect(line.add(2, 1, 1, 'fits')).toBe(true);
    expect(held.takeFrom(5)?.v).toEqual(['fits']);
  });

  it('takes the JSON path only where JSON gives back what structured clone does', () => {
    const sparse: number[] = new Array(3);
    sparse[0] = 1;
    sparse[2] = 3;
    const cases = [
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      sparse,
      [1, undefined],
      { a: undefined },
      new Date(0),
      // A small Buffer views Node's shared pool: only its own bytes go (the pool would not fit on a line).
      Buffer.from('ab'),
      new Float64Array([1.5, -0]),
      new Float64Array(new ArrayBuffer(32), 8, 2),
      new BigInt64Array([-1n]),
      new DataView(new Uint8Array([1, 2, 3]).buffer, 1),
      { nested: [new Uint16Array([7, 8])] },
    ];
    for (const value of cases) {
      expect(jsonExact(value)).toBe(false);
      const back = roundTrip(value);
      expect(back).toEqual([structuredClone(value)]);
      // The same kind of object too: a Buffer comes back as structured clone gives it, a Uint8Array.
      expect(Object.getPrototypeOf(back?.[0])).toBe(Object.getPrototypeOf(structuredClone(value)));
    }
    const withExtraKey = Object.assign([1, 2], { extra: true });
    expect(jsonExact(withExtraKey)).toBe(false);
    expect(jsonExact({ toJSON: () => 1 })).toBe(false);
    expect(jsonExact({ ['__proto__']: { polluted: true } })).toBe(true);
    expect(roundTrip(JSON.parse('{"__proto__":{"polluted":true}}'))).toEqual([
      structuredClone(JSON.parse('{"__proto__":{"polluted":true}}')),
    ]);
  });

  it('gives back any value exactly as structured clone would (property)', () => {
    fc.assert(
      fc.property(
        fc.anything({ withNullPrototype: true, withSparseArray: true, withTypedArray: true }),
        (value) => {
          const back = roundTrip(value);
          if (back === undefined) return; // too big for a line: posted instead
          expect(isDeepStrictEqual(back[0], structuredClone(value))).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
