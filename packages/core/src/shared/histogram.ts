/**
 * A log-linear latency histogram over integer microseconds: four buckets per power of two, from 1 µs up to
 * 2^26 µs (67 s), plus one overflow bucket. Values 0..3 get a bucket each; above that a bucket is a quarter
 * of its power of two wide, so any value is known to within 25 % (12.5 % at the top of a power), with the
 * index computed from `Math.clz32` — no loop, no table, no floating point on the hot path.
 *
 *   value       0  1  2  3 │ 4  5  6  7 │ 8–9 10–11 12–13 14–15 │ 16–19 … │ … 2^25 … 2^26-1 │ ≥ 2^26
 *   bucket      0  1  2  3 │ 4  5  6  7 │  8    9    10    11   │  12   … │ …    96 … 99   │  100
 */

/** Buckets per power of two: the value's two bits after its leading one pick the bucket. */
const SUB_BITS = 2;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Values from here on all land in the overflow bucket. */
export const OVERFLOW_MICROS = 2 ** 26;
/** Index of the overflow bucket. */
export const OVERFLOW_BUCKET = SUB_BUCKETS * (26 - 1);
/** Number of buckets, the overflow bucket included. */
export const BUCKETS = OVERFLOW_BUCKET + 1;

/** The bucket of an integer latency `micros` (0 ≤ micros < 2^31). */
export function bucketIndex(micros: number): number {
  if (micros < SUB_BUCKETS) return micros;
  if (micros >= OVERFLOW_MICROS) return OVERFLOW_BUCKET;
  const power = 31 - Math.clz32(micros);
  return SUB_BUCKETS * (power - 1) + ((micros >>> (power - SUB_BITS)) & (SUB_BUCKETS - 1));
}

/** The smallest value in bucket `index`. */
export function bucketLowerBound(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const power = (index >>> SUB_BITS) + 1;
  return (SUB_BUCKETS + (index & (SUB_BUCKETS - 1))) * 2 ** (power - SUB_BITS);
}

/** One past the largest value in bucket `index`; Infinity for the overflow bucket. */
export function bucketUpperBound(index: number): number {
  return index >= OVERFLOW_BUCKET ? Number.POSITIVE_INFINITY : bucketLowerBound(index + 1);
}

/**
 * The `q`-quantile (0 ≤ q ≤ 1, nearest rank) of the values counted in `counts`, in the histogram's unit.
 * The result lies in the bucket that holds the exact quantile, so it is within one bucket width of it:
 * within the bucket it is interpolated by rank, and capped at `max` (the largest value recorded, when known)
 * so the top quantiles of a sparse histogram do not overshoot what was seen. 0 when nothing was counted.
 */
export function quantileFromCounts(counts: ArrayLike<number>, q: number, max?: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] ?? 0;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * total));
  let before = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i] ?? 0;
    if (before + count < rank) {
      before += count;
      continue;
    }
    const lower = bucketLowerBound(i);
    let top = bucketUpperBound(i) - 1;
    if (max !== undefined && max < top) top = max;
    // No finite top (overflow bucket, max unknown), or a max read before this bucket's count: the lower bound.
    if (!(top > lower && top < Number.POSITIVE_INFINITY)) return lower;
    return lower + (top - lower) * ((rank - before) / count);
  }
  return max ?? 0;
}
