import type { MetricsRegion } from '../shared/MetricsRegion.js';

/**
 * One `stream()` call's buffer as the chain sees it (`call.stream`; undefined for every other call). Middleware
 * may read `delivered` and `stopped`; the rest is the terminal's.
 */
export interface StreamSink {
  /** Most items the producer may be ahead of the consumer (`highWaterMark`). */
  readonly highWaterMark: number;
  /** Items that reached the consumer's side so far, over every attempt of the call. */
  readonly delivered: number;
  /** The consumer stopped reading (`break`, `return()`): nothing more is wanted. */
  readonly stopped: boolean;
  /** @internal Items of one chunk, in order; kept as they are (the array is not copied). */
  push(items: readonly unknown[]): void;
  /** @internal One item. */
  pushOne(item: unknown): void;
  /** @internal Connects an attempt's producer; returns the credits it starts with (items it may produce). */
  connect(producer: StreamProducer): number;
  /** @internal Counts delivered items and the time to the first one in `slot` of `region`. */
  meter(region: MetricsRegion, slot: number): void;
}

/** @internal What a stream's consumer tells the attempt producing its items. */
export interface StreamProducer {
  /** The consumer took `n` more items: the producer may produce `n` more. */
  grant(n: number): void;
  /** The consumer stopped: end the generator (its `finally` runs) and settle the call as a success. */
  stop(): void;
}
