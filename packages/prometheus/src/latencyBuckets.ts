import { CqrsError } from '@cqrs-pool/core';
import { bucketUpperBound, OVERFLOW_BUCKET, OVERFLOW_MICROS } from '@cqrs-pool/core/internal';

/**
 * The default `le` bounds of the exported histograms, in seconds: one per power of two of microseconds, from
 * 1 µs to 2^26 µs (67 s). Every one is a bound of the shared log-linear histogram (four buckets per power of
 * two), so each cumulative count is exact, not interpolated. A quantile `histogram_quantile` works out from
 * them lies in the bucket of the true one: within a factor of 2 of it (the bucket's bounds).
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Array.from({ length: 27 }, (_, k) => 2 ** k / 1e6);

/**
 * Every bound the shared histogram has, in seconds: four per power of two of microseconds (1, 1.25, 1.5,
 * 1.75 × 2^k), from 1 µs to 67 s — 100 bounds. A quantile from them is within 25 % of the true one (a
 * bucket's upper bound is at most 1.25 × its lower). That is 100 series per histogram and handler: keep the
 * range you need, e.g. `FINE_LATENCY_BUCKETS.filter((s) => s >= 1e-4 && s <= 10)`.
 */
export const FINE_LATENCY_BUCKETS: readonly number[] = Array.from(
  { length: OVERFLOW_BUCKET },
  (_, index) => bucketUpperBound(index) / 1e6,
);

/** Exported `le` bounds mapped onto the shared histogram's buckets. */
export interface LatencyBuckets {
  /** Upper bounds in seconds, ascending (`+Inf` is implied). */
  readonly le: readonly number[];
  /** For each bound, how many shared buckets (from bucket 0) lie wholly below it. */
  readonly bucketsBelow: readonly number[];
}

/**
 * Maps `le` bounds in seconds onto the shared histogram. A bound that is not a shared bucket bound is raised
 * to the next one (e.g. 0.005 s → 0.00512 s), so that its count stays exact; duplicates are dropped.
 * @throws CqrsError `INVALID_REGISTRATION` for a bound that is not a positive number up to 2^26 µs (67.108864 s).
 */
export function latencyBuckets(seconds: readonly number[]): LatencyBuckets {
  if (!Array.isArray(seconds)) {
    throw new CqrsError('INVALID_REGISTRATION', 'options.latencyBuckets must be an array of seconds');
  }
  const byBucket = new Map<number, number>();
  for (const s of seconds) {
    const micros = typeof s === 'number' ? s * 1e6 : Number.NaN;
    if (!(micros > 0 && micros <= OVERFLOW_MICROS)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `options.latencyBuckets: ${String(s)} is not a bound in (0, ${OVERFLOW_MICROS / 1e6}] seconds`,
      );
    }
    // The first shared bucket whose (exclusive) upper bound reaches the requested one. Linear: 100 buckets,
    // once at registration.
    let index = 0;
    while (index < OVERFLOW_BUCKET - 1 && bucketUpperBound(index) < micros) index++;
    byBucket.set(index + 1, bucketUpperBound(index) / 1e6);
  }
  const bucketsBelow = [...byBucket.keys()].sort((a, b) => a - b);
  return { le: bucketsBelow.map((n) => byBucket.get(n) as number), bucketsBelow };
}

/**
 * Cumulative counts of `counts` (the shared histogram) at each bound of `buckets`. A shared bucket's upper
 * bound is exclusive and latencies are whole microseconds, so the count at `le` is of latencies below it:
 * one recorded as exactly `le` (after rounding to the µs) is counted at the next bound.
 */
export function cumulativeCounts(counts: readonly number[], buckets: LatencyBuckets): number[] {
  const out: number[] = [];
  let running = 0;
  let next = 0;
  for (const end of buckets.bucketsBelow) {
    while (next < end) running += counts[next++] ?? 0;
    out.push(running);
  }
  return out;
}
