import { describe, expect, it } from 'vitest';
import {
  BUCKETS,
  bucketIndex,
  bucketLowerBound,
  bucketUpperBound,
  OVERFLOW_BUCKET,
  OVERFLOW_MICROS,
  quantileFromCounts,
} from './histogram.js';

/** A small seeded PRNG, so a failure reproduces. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function histogramOf(samples: readonly number[]): number[] {
  const counts = new Array<number>(BUCKETS).fill(0);
  for (const v of samples) counts[bucketIndex(v)] = (counts[bucketIndex(v)] ?? 0) + 1;
  return counts;
}

describe('bucketIndex', () => {
  it('gives 0..3 a bucket each, then four buckets per power of two', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(bucketIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([8, 9, 10, 11, 12, 14, 15, 16, 19, 20].map(bucketIndex)).toEqual([
      8, 8, 9, 9, 10, 11, 11, 12, 12, 13,
    ]);
    expect(bucketIndex(1024)).toBe(4 * 9);
    expect(bucketIndex(OVERFLOW_MICROS - 1)).toBe(OVERFLOW_BUCKET - 1);
  });

  it('puts 2^26 µs (67 s) and above in the overflow bucket', () => {
    expect(OVERFLOW_MICROS).toBeGreaterThan(60_000_000);
    expect(bucketIndex(OVERFLOW_MICROS)).toBe(OVERFLOW_BUCKET);
    expect(bucketIndex(2 ** 30)).toBe(OVERFLOW_BUCKET);
    expect(BUCKETS).toBe(OVERFLOW_BUCKET + 1);
  });

  it('places every value within its bucket bounds, and never goes back down', () => {
    let previous = 0;
    const values = [...Array.from({ length: 70_000 }, (_, i) => i)];
    for (let power = 16; power <= 27; power++) {
      for (const delta of [-2, -1, 0, 1, 2, 12_345]) values.push(2 ** power + delta);
    }
    values.sort((a, b) => a - b);
    const misplaced: number[] = [];
    for (const v of values) {
      const index = bucketIndex(v);
      if (index < previous || v < bucketLowerBound(index) || v >= bucketUpperBound(index)) misplaced.push(v);
      previous = index;
    }
    expect(misplaced).toEqual([]);
  });

  it('keeps bucket bounds contiguous, each bucket at most a quarter of its lower bound wide', () => {
    for (let i = 0; i < OVERFLOW_BUCKET; i++) {
      expect(bucketUpperBound(i)).toBe(bucketLowerBound(i + 1));
      const width = bucketUpperBound(i) - bucketLowerBound(i);
      expect(width).toBeGreaterThanOrEqual(1);
      if (i >= 4) expect(width / bucketLowerBound(i)).toBeLessThanOrEqual(0.25);
    }
    expect(bucketUpperBound(OVERFLOW_BUCKET)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('quantileFromCounts', () => {
  const quantiles = [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1];
  const distributions: Record<string, (random: () => number) => number> = {
    'log-uniform 1 µs..60 s': (random) => Math.floor(Math.exp(random() * Math.log(60_000_000))),
    'uniform 0..100 µs': (random) => Math.floor(random() * 100),
    'bimodal 50 µs / 20 ms': (random) =>
      random() < 0.9 ? 50 + Math.floor(random() * 10) : 20_000 + Math.floor(random() * 5_000),
    'constant 1234 µs': () => 1234,
  };

  for (const [name, draw] of Object.entries(distributions)) {
    it(`is within one bucket width of the exact quantile (${name})`, () => {
      const random = mulberry32(name.length * 7919);
      for (const size of [1, 2, 10, 1_000, 20_000]) {
        const samples = Array.from({ length: size }, () => draw(random));
        const counts = histogramOf(samples);
        const sorted = [...samples].sort((a, b) => a - b);
        const max = sorted[sorted.length - 1] ?? 0;
        for (const q of quantiles) {
          const exact = sorted[Math.max(1, Math.ceil(q * size)) - 1] ?? 0;
          const bucket = bucketIndex(exact);
          const width = bucketUpperBound(bucket) - bucketLowerBound(bucket);
          const estimate = quantileFromCounts(counts, q, max);
          expect(Math.abs(estimate - exact), `q=${q} size=${size}`).toBeLessThan(width);
          expect(bucketIndex(Math.floor(estimate))).toBe(bucket);
        }
      }
    });
  }

  it('is 0 for an empty histogram', () => {
    expect(quantileFromCounts(new Array<number>(BUCKETS).fill(0), 0.5)).toBe(0);
  });

  it('returns the one recorded value when the max is known', () => {
    const counts = histogramOf([777]);
    expect(quantileFromCounts(counts, 0.5, 777)).toBe(777);
    expect(quantileFromCounts(counts, 0.99, 777)).toBe(777);
  });

  it('does not report more than the recorded maximum', () => {
    const counts = histogramOf([1000, 1001, 1002]);
    expect(quantileFromCounts(counts, 1, 1002)).toBe(1002);
    expect(quantileFromCounts(counts, 1)).toBeGreaterThan(1002);
  });

  it('reads the overflow bucket from the recorded maximum', () => {
    const counts = histogramOf([OVERFLOW_MICROS + 5, OVERFLOW_MICROS + 500_000]);
    expect(quantileFromCounts(counts, 1, OVERFLOW_MICROS + 500_000)).toBe(OVERFLOW_MICROS + 500_000);
    expect(quantileFromCounts(counts, 1)).toBe(OVERFLOW_MICROS);
  });
});
