/**
 * A GCRA rate limiter (generic cell rate algorithm — a token bucket kept as one timestamp) on each handler's
 * limiter word in the metrics region (layout.ts), shared by every thread.
 *
 * The word holds the theoretical arrival time (TAT) in nanoseconds of the limiter's clock: when the next
 * call would be due if calls came exactly at the rate. A call at `now` is admitted when
 *
 *   max(TAT, now) + interval − now ≤ burst × interval        (interval = windowMs / limit)
 *
 * and then TAT moves to `max(TAT, now) + interval` by compare-and-swap — one 64-bit word, so admission is
 * one CAS and no lock, and a thread that loses the race just decides again against the new TAT. Starting
 * idle, it admits `burst` calls at once, then one per interval: `burst + elapsed / interval` over a run.
 *
 * The interval is kept in whole nanoseconds (windowMs / limit rarely divides evenly): rounding it drifts by at
 * most half a nanosecond per admitted call, far below any clock's resolution. BigInt64 words hold nanoseconds
 * for 292 years of any clock origin.
 */
import { RegionLayout } from './layout.js';
import { type Clock, wallClock } from './wallClock.js';

/** Limiter settings (validated at construction). */
export interface GcraOptions {
  /** Calls per window, a positive integer. */
  limit: number;
  /** The window, in ms (> 0). */
  windowMs: number;
  /** Calls admitted at once after an idle period, a positive integer. Default: `limit`. */
  burst?: number;
}

/** What `tryAcquire` decided. */
export type GcraResult =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

const ALLOWED: GcraResult = Object.freeze({ allowed: true });
// The wall clock with its origin read once: `performance.timeOrigin` is fixed for the thread's lifetime, and
// reading it is a getter call, about a fifth of the limiter's cost when read per call.
const timeOrigin = performance.timeOrigin;
const cachedOriginWallClock: Clock = () => timeOrigin + performance.now();
const NS_PER_MS = 1_000_000;
/** How far TAT may run ahead of the clock (see gcraSettings). */
const MAX_AHEAD_NS = 2 ** 62;
const YEAR_NS = 365.25 * 86_400e9;

/**
 * Checks limiter options and fills in the default burst.
 * @throws TypeError naming the option out of range.
 * @internal
 */
export function gcraSettings(options: GcraOptions): Required<GcraOptions> {
  const { limit, windowMs } = options;
  const burst = options.burst ?? limit;
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new TypeError(`options.limit must be a positive integer, got ${String(limit)}`);
  }
  if (!(typeof windowMs === 'number' && windowMs > 0 && Number.isFinite(windowMs))) {
    throw new TypeError(`options.windowMs must be a positive number of ms, got ${String(windowMs)}`);
  }
  if (!(Number.isInteger(burst) && burst >= 1)) {
    throw new TypeError(`options.burst must be a positive integer, got ${String(burst)}`);
  }
  const intervalNs = Math.round((windowMs * NS_PER_MS) / limit);
  if (intervalNs < 1) {
    throw new TypeError('options.limit per options.windowMs is above one call per nanosecond');
  }
  // TAT runs up to burst × interval ahead of the clock, in a signed 64-bit word that also holds the clock
  // (ns since 1970 for the wall clock, ~2^60.6): past 2^62 the sum could wrap negative, and a wrapped TAT
  // reads as long past, admitting every call.
  if (intervalNs * burst > MAX_AHEAD_NS) {
    throw new TypeError(
      `options.windowMs / options.limit × options.burst must be at most 146 years (2^62 ns), got ${Math.round(
        (intervalNs * burst) / YEAR_NS,
      )} years`,
    );
  }
  return { limit, windowMs, burst };
}

/** A rate limiter over the limiter words of a metrics region; one instance serves many slots. @internal */
export class Gcra {
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
  private readonly intervalNs: bigint;
  /** Tolerance − interval: how far TAT may run ahead of now for a call to be admitted. */
  private readonly slackNs: bigint;
  private readonly clock: Clock;
  private words: BigInt64Array;
  private readonly layout: RegionLayout;

  /** @throws TypeError naming the option out of range, or when `buffer` is not a metrics region. */
  constructor(
    private readonly buffer: SharedArrayBuffer,
    options: GcraOptions,
    clock: Clock = wallClock,
  ) {
    const settings = gcraSettings(options);
    this.limit = settings.limit;
    this.windowMs = settings.windowMs;
    this.burst = settings.burst;
    this.intervalNs = BigInt(Math.round((this.windowMs * NS_PER_MS) / this.limit));
    this.slackNs = this.intervalNs * BigInt(this.burst - 1);
    this.clock = clock === wallClock ? cachedOriginWallClock : clock;
    this.layout = RegionLayout.of(buffer);
    this.words = new BigInt64Array(buffer, 0, buffer.byteLength / 8);
  }

  /**
   * Admits one call of handler `slot` at `now` (ms of the limiter's clock, ≥ 0: an unused word reads as
   * TAT 0), or refuses it with the ms until one would be admitted.
   * @throws RangeError for a slot the buffer does not hold.
   */
  tryAcquire(slot: number, now: number = this.clock()): GcraResult {
    const index = this.indexOf(slot);
    const nowNs = BigInt(Math.round(now * NS_PER_MS));
    // The admission test `max(TAT, now) + interval − now ≤ tolerance`, split so that the common cases compute
    // one BigInt each (every BigInt result is an allocation): an idle limiter (TAT ≤ now) always admits, since
    // burst ≥ 1; a busy one admits while TAT − now ≤ tolerance − interval.
    for (;;) {
      const tat = Atomics.load(this.words, index);
      let next: bigint;
      if (tat <= nowNs) next = nowNs + this.intervalNs;
      else {
        const ahead = tat - nowNs;
        if (ahead > this.slackNs) {
          return { allowed: false, retryAfterMs: Math.ceil(Number(ahead - this.slackNs) / NS_PER_MS) };
        }
        next = tat + this.intervalNs;
      }
      if (Atomics.compareExchange(this.words, index, tat, next) === tat) return ALLOWED;
    }
  }

  /** Forgets the history of `slot`: its next call sees an idle limiter with a full burst. */
  reset(slot: number): void {
    Atomics.store(this.words, this.indexOf(slot), 0n);
  }

  private indexOf(slot: number): number {
    const index = this.layout.limiterIndex(slot);
    if (index >= this.words.length) {
      // A slot registered after this limiter was made: map the grown buffer (fixed-length view, layout.ts).
      this.words = new BigInt64Array(this.buffer, 0, this.buffer.byteLength / 8);
    }
    if (!(slot >= 0 && index < this.words.length)) throw new RangeError(`slot ${slot} is not in this region`);
    return index;
  }
}
