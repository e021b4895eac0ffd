import { BUCKETS, bucketIndex, bucketLowerBound, bucketUpperBound } from '@cqrs-pool/core/internal';
import { describe, expect, it } from 'vitest';
import {
  cumulativeCounts,
  DEFAULT_LATENCY_BUCKETS,
  FINE_LATENCY_BUCKETS,
  latencyBuckets,
} from './latencyBuckets.js';

describe('latencyBuckets', () => {
  it('maps one bound per power of two onto the shared buckets by default', () => {
    const buckets = latencyBuckets(DEFAULT_LATENCY_BUCKETS);
    expect(buckets.le).toEqual(DEFAULT_LATENCY_BUCKETS);
    expect(buckets.le[0]).toBe(0.000001);
    expect(buckets.le.at(-1)).toBe(67.108864);
    // 1 µs: bucket 0 (value 0) only; 1024 µs: everything below bucketIndex(1024).
    expect(buckets.bucketsBelow[0]).toBe(1);
    expect(buckets.bucketsBelow[10]).toBe(bucketIndex(1024));
  });

  it('raises a bound to the next shared bucket bound and drops duplicates', () => {
    const buckets = latencyBuckets([0.005, 0.00512, 0.001]);
    expect(buckets.le).toEqual([0.001024, 0.00512]);
  });

  it('refuses bounds that are not positive or beyond the histogram', () => {
    expect(() => latencyBuckets([0])).toThrow(/latencyBuckets/);
    expect(() => latencyBuckets([100])).toThrow(/latencyBuckets/);
    expect(() => latencyBuckets([Number.NaN])).toThrow(/latencyBuckets/);
  });

  it('accumulates counts below each bound', () => {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (const micros of [0, 3, 500, 1023, 1024, 70_000_000]) {
      const index = bucketIndex(micros);
      counts[index] = (counts[index] ?? 0) + 1;
    }
    const buckets = latencyBuckets([0.000004, 0.001024, 0.002048, 67.108864]);
    // 1024 µs is not below 1024 µs; 70 s is in the overflow bucket, counted only in +Inf.
    expect(cumulativeCounts(counts, buckets)).toEqual([2, 4, 5, 5]);
  });

  it('offers every bound of the shared histogram, each bucket within 25 % from 4 µs up', () => {
    const buckets = latencyBuckets(FINE_LATENCY_BUCKETS);
    expect(buckets.le).toEqual(FINE_LATENCY_BUCKETS);
    expect(buckets.le).toHaveLength(BUCKETS - 1);
    expect(buckets.bucketsBelow).toEqual(Array.from({ length: BUCKETS - 1 }, (_, i) => i + 1));
    expect(buckets.le.slice(0, 9)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 10].map((us) => us / 1e6));
    // What bounds histogram_quantile's error: the widest bucket relative to its lower bound.
    for (let i = 4; i < BUCKETS - 1; i++) {
      expect(bucketUpperBound(i) / bucketLowerBound(i)).toBeLessThanOrEqual(1.25);
    }
    // The default has one bound per power of two: a bucket spans a factor of 2.
    for (let k = 1; k < DEFAULT_LATENCY_BUCKETS.length; k++) {
      expect((DEFAULT_LATENCY_BUCKETS[k] as number) / (DEFAULT_LATENCY_BUCKETS[k - 1] as number)).toBe(2);
    }
  });
});
