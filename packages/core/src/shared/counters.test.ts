import { describe, expect, it } from 'vitest';
import { addWide, addWideLocal, raiseMax, readWide } from './counters.js';

function words(): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(16));
}

describe('wide counters', () => {
  it('carries past 2^32 without losing a count', () => {
    const w = words();
    w[0] = 2 ** 32 - 5;
    w[1] = 1; // consistent: the low word is in its upper half
    expect(readWide(w, 0)).toBe(2 ** 32 - 5);
    addWide(w, 0, 10);
    expect(readWide(w, 0)).toBe(2 ** 32 + 5);
    addWide(w, 0, 2 ** 31 - 1);
    expect(readWide(w, 0)).toBe(2 ** 32 + 5 + 2 ** 31 - 1);
  });

  it('matches a 64-bit reference over many large adds', () => {
    const w = words();
    let reference = 0n;
    let seed = 12345;
    for (let i = 0; i < 100_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const amount = seed % 2 ** 31;
      addWide(w, 0, amount);
      reference += BigInt(amount);
    }
    expect(reference).toBeGreaterThan(2n ** 40n);
    expect(BigInt(readWide(w, 0))).toBe(reference);
  });

  it('reads exactly while a writer has moved the low word but not yet counted the half-turn', () => {
    const w = words();
    // Crossed 2^31 into the upper half, high word still 0.
    w[0] = 2 ** 31 + 3;
    w[1] = 0;
    expect(readWide(w, 0)).toBe(2 ** 31 + 3);
    // Wrapped past 2^32, high word still counting only the first half-turn.
    w[0] = 3;
    w[1] = 1;
    expect(readWide(w, 0)).toBe(2 ** 32 + 3);
    // The same values once the writer caught up.
    w[0] = 2 ** 31 + 3;
    w[1] = 1;
    expect(readWide(w, 0)).toBe(2 ** 31 + 3);
    w[0] = 3;
    w[1] = 2;
    expect(readWide(w, 0)).toBe(2 ** 32 + 3);
  });

  it('addWideLocal counts exactly what addWide counts', () => {
    const atomic = words();
    const local = words();
    let seed = 777;
    for (let i = 0; i < 100_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const amount = seed % 2 ** 31;
      addWide(atomic, 0, amount);
      addWideLocal(local, 0, amount);
    }
    expect(readWide(local, 0)).toBe(readWide(atomic, 0));
    expect([...local]).toEqual([...atomic]);
  });

  it('raiseMax only ever raises', () => {
    const w = words();
    raiseMax(w, 2, 10);
    raiseMax(w, 2, 7);
    expect(w[2]).toBe(10);
    raiseMax(w, 2, 2 ** 30);
    expect(w[2]).toBe(2 ** 30);
  });
});
