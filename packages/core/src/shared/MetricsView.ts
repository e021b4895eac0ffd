import { addWide, raiseMax } from './counters.js';
import { bucketIndex } from './histogram.js';
import { HEADER_BYTES, Header, MAIN_STRIPE, RegionLayout, STRIPE_WORDS, Stripe } from './layout.js';

/**
 * Latencies are clamped to 2^30 µs (about 18 minutes): one add must stay below 2^31 for the wide counters,
 * and anything that long is in the histogram's overflow bucket anyway.
 */
export const MAX_LATENCY_MICROS = 2 ** 30;

/** A latency as the histograms count it: whole µs, rounded, clamped to 0..{@link MAX_LATENCY_MICROS}. */
export function wholeMicros(latencyMicros: number): number {
  return latencyMicros > 0
    ? latencyMicros < MAX_LATENCY_MICROS
      ? (latencyMicros + 0.5) | 0
      : MAX_LATENCY_MICROS
    : 0;
}

/**
 * Any thread's access to a metrics region (see layout.ts): records settled calls into the thread's stripe.
 * Built from the region's SharedArrayBuffer alone; a slot the main thread registers after this view was
 * made is usable as soon as its index arrives (the view remaps itself over the grown buffer).
 * @internal
 */
export class MetricsView {
  /** Offsets of this region. */
  readonly layout: RegionLayout;
  /** Number of stripes, the main thread's included. */
  readonly stripes: number;
  /** The region as 32-bit words, fixed-length over the buffer as last mapped (see `remap`). */
  protected words: Uint32Array;

  /** @throws TypeError when `buffer` is not a metrics region of this version. */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.layout = RegionLayout.of(buffer);
    this.stripes = this.layout.stripes;
    this.words = new Uint32Array(buffer, 0, buffer.byteLength / 4);
  }

  /** Maps the views over the buffer's current length, after the main thread grew it. */
  protected remap(): void {
    this.words = new Uint32Array(this.buffer, 0, this.buffer.byteLength / 4);
  }

  /**
   * Claims the stripe a pool thread records into, once at thread start: stripes 1..S in turn, by an
   * `Atomics.add` on the header's counter. With more threads than stripes (or threads replaced after a
   * timeout, which take new numbers) two threads share a stripe; counts stay exact because every write is
   * an atomic add — sharing costs cache-line traffic, never a lost count.
   */
  claimStripe(): number {
    const header = new Int32Array(this.buffer, 0, HEADER_BYTES / 4);
    const claimed = Atomics.add(header, Header.threadsClaimed, 1);
    return MAIN_STRIPE + 1 + (claimed % (this.stripes - 1));
  }

  /**
   * Records one settled call of handler `slot` on `stripe`: its latency in µs (fractions rounded, clamped to
   * 0..2^30) and whether it failed: three atomic adds (four for a failure) and a plain read of the maximum,
   * on lines no other stripe writes.
   * @throws RangeError for a stripe outside the region, or a slot beyond the buffer.
   */
  record(slot: number, stripe: number, latencyMicros: number, failed: boolean): void {
    if (!(stripe >= 0 && stripe < this.stripes))
      throw new RangeError(`stripe ${stripe} is not in this region`);
    const micros = wholeMicros(latencyMicros);
    const base = this.layout.stripeWord(slot, stripe);
    if (base + STRIPE_WORDS > this.words.length) {
      this.remap();
      if (!(slot >= 0 && base + STRIPE_WORDS <= this.words.length)) {
        throw new RangeError(`slot ${slot} is not in this region`);
      }
    }
    const words = this.words;
    // Histogram and latency first, executions last: a snapshot racing this call may miss it entirely or
    // count its latency a moment early, but never reports an execution whose latency is missing.
    addWide(words, base + Stripe.histogram + 2 * bucketIndex(micros), 1);
    addWide(words, base + Stripe.latencySumMicros, micros);
    raiseMax(words, base + Stripe.maxMicros, micros);
    if (failed) addWide(words, base + Stripe.failures, 1);
    addWide(words, base + Stripe.executions, 1);
  }
}
