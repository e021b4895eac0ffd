import { describe, expect, it } from 'vitest';
import { partitionOf } from './partitionOf.js';

describe('partitionOf', () => {
  it('is FNV-1a of the typed key: fixed values, so senders and nodes of any version agree', () => {
    expect(partitionOf('', 1)).toBe(0);
    // FNV-1a (32 bits) of "s:a" is 0xc0b27c6b: a change of the hash would split the keys of running streams.
    expect(partitionOf('a', 2 ** 32)).toBe(0xc0b27c6b);
    expect(partitionOf('a', 16)).toBe(0xc0b27c6b % 16);
  });

  it('tells a string from a number, and spreads 1000 keys over every partition', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 1000; i++) {
      const p = partitionOf(`key-${i}`, 16);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(16);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    expect(counts.every((n) => n > 0)).toBe(true);
    const differ = Array.from(
      { length: 50 },
      (_, i) => partitionOf(i, 1024) !== partitionOf(String(i), 1024),
    );
    expect(differ.some(Boolean)).toBe(true);
  });
});
