/**
 * The metrics region: one growable SharedArrayBuffer holding, per registered handler, its counters, its
 * latency histogram, its circuit-breaker state and its rate-limiter word. Every thread records into it with
 * `Atomics`; the main thread assigns handler slots and reads snapshots. This file is the only place offsets
 * are written down.
 *
 *   byte 0     ┌─ header line ───────────────────────────────────────────────────────────────────────┐
 *              │ magic │ version │ stripes │ handlers │ threads claimed │ (unused)                   │
 *   128        ├─ handler 0 ─────────────────────────────────────────────────────────────────────────┤
 *     +0       │ breaker line  state·gen │ failures tag·n │ probes tag·n │ successes tag·n │          │
 *              │               until tag │ · │ until µs (int64, bytes 24..31) │                    │
 *              │               transitions: closed→open │ open→half-open │ half-open→closed │      │
 *              │                            half-open→open (words 8..11)                         │
 *     +128     │ limiter line  TAT ns (int64)                                                        │
 *     +256     │ main line     calls waiting for their key │ key-wait µs lo,hi │ call µs lo,hi │     │
 *              │               queue-wait µs lo,hi │ stream items lo,hi │ first-item µs lo,hi │    │
 *              │               first items lo,hi │ first-item max µs                             │
 *     +384     │ key-wait histogram    101 buckets × (lo,hi), 7 lines ┐                             │
 *     +1280    │ call-duration hist.   the same, 7 lines              ├ main thread only            │
 *     +2176    │ queue-wait histogram  the same, 7 lines              ┘                             │
 *     +3072    │ stripe 0 (main thread)                                                              │
 *              │   counters line  executions lo,hi │ failures lo,hi │ latency µs lo,hi │ max µs │      │
 *              │                  in-flight (stripe 0 only)                                          │
 *     +3200    │   histogram      101 buckets × (lo,hi)  = 808 B, padded to 7 lines                  │
 *     +4096    │ stripe 1 (first pool-thread stripe) …                                               │
 *     …        │ stripe S                                                                            │
 *   128 + H    ├─ handler 1 … (H = 3072 + (S + 1) × 1024 bytes)                                    │
 *              └─────────────────────────────────────────────────────────────────────────────────────┘
 *
 * Why this shape:
 * - Handler-major, so registering a handler only appends: growing the buffer never moves a count, and a
 *   thread's length-tracking view sees the new slots without being told anything but the slot index.
 * - Each stripe is written by one thread (the main thread owns stripe 0; pool threads claim 1..S), and its
 *   counters and histogram sit on lines no other stripe uses, so the hot path never writes a line another
 *   core writes. The histogram is striped too: latencies of one handler cluster in a few neighbouring
 *   buckets, so a shared histogram would put every thread's record on the same line — the contention the
 *   striped counters exist to avoid. The price is (S + 1) × 808 B per handler and a wider sum at snapshot.
 * - Counters are 64-bit as two 32-bit words (see counters.ts): at a million records a second a 32-bit
 *   count would wrap within the hour.
 * - The breaker line is read on every call by every thread and written only on failures and transitions
 *   (the transition counters too: the thread whose CAS made a transition counts it, on any thread);
 *   the limiter word is written on every admitted call, so it gets a line of its own rather than evicting
 *   the breaker line from every core's cache.
 * - The main block holds what only the main thread measures (per-key order happens where calls enter the
 *   bus; a call's duration is what its caller saw; a pooled call's queue wait is worked out when its outcome
 *   comes back): not striped, written without atomics, on lines of its own, so it never shares a line with
 *   a thread's stripe.
 * - Hot paths use fixed-length views taken over the buffer's current length, remapped when a slot lies
 *   beyond them, not length-tracking views: on Node 20 an `Atomics` operation through a length-tracking view
 *   of a growable buffer costs about 2.5× as much (~20 ns instead of ~8). A fixed view stays valid as the
 *   buffer grows, since a SharedArrayBuffer never shrinks.
 */
import { BUCKETS } from './histogram.js';

/** Bytes in one cache line as far as false sharing goes (two 64-byte lines: adjacent-line prefetch pairs them). */
export const LINE_BYTES = 128;
/** Identifies a metrics region in its first word ("CQRS"). */
export const MAGIC = 0x43_51_52_53;
/** Bumped whenever anything below changes, so a mismatched thread bundle fails loudly. */
export const VERSION = 3;
/** The main thread always records into stripe 0. */
export const MAIN_STRIPE = 0;

/** Word indices (32-bit) in the header line. */
export const Header = {
  magic: 0,
  version: 1,
  /** Total stripes, main thread's included. */
  stripes: 2,
  /** Handler slots allocated so far (published after the slot is usable). */
  handlers: 3,
  /** Incremented once by each thread that claims a stripe. */
  threadsClaimed: 4,
} as const;

/** Word indices (32-bit, Int32) in a handler's breaker line. */
export const Breaker = {
  /** `generation << 2 | state`. */
  state: 0,
  /** Consecutive failures of the current closed round: `tag << 16 | count`. */
  failures: 1,
  /** Trial calls issued in the current half-open round: `tag << 16 | count`. */
  probes: 2,
  /** Trial calls that succeeded in the current half-open round: `tag << 16 | count`. */
  successes: 3,
  /** The generation whose open-until time is in `untilMicros` (published after it). */
  untilTag: 4,
  /** Byte offset in the line of the int64 open-until time, in µs of the breaker's clock. */
  untilMicrosByte: 24,
  /**
   * First of four 32-bit counters of transitions, in the order of `TRANSITIONS` (breakerState.ts): counted
   * by the one call whose compare-and-swap made each.
   */
  transitions: 8,
} as const;

/** Word indices (32-bit) in a stripe's counters line; each wide counter spans two words (lo, hi). */
export const Stripe = {
  executions: 0,
  failures: 2,
  latencySumMicros: 4,
  /** Largest latency recorded on this stripe, in µs (one word: latencies are clamped below 2^30). */
  maxMicros: 6,
  /** Calls started and not yet settled; maintained on the main thread (stripe 0) only. */
  inFlight: 7,
  /** First word of the histogram: bucket b's wide counter is at words `histogram + 2b`, `+ 2b + 1`. */
  histogram: LINE_BYTES / 4,
} as const;

const HISTOGRAM_BYTES = Math.ceil((BUCKETS * 8) / LINE_BYTES) * LINE_BYTES;

/** Word indices (32-bit) in a handler's main block, written by the main thread only. */
export const Main = {
  /** Calls of this handler waiting for their ordering key (a gauge). */
  keyWaiting: 0,
  /** Sum of the key waits recorded in the histogram below, in µs (wide: lo, hi). */
  keyWaitSumMicros: 2,
  /** Sum of the call durations (execute to settled) in their histogram, in µs (wide). */
  callSumMicros: 4,
  /** Sum of the queue waits (pool.run to the handler's start in its thread) in their histogram, in µs (wide). */
  queueWaitSumMicros: 6,
  /** Items of a streaming query that reached the main thread (wide: lo, hi). */
  streamItems: 8,
  /** Sum of the streams' times to their first item, in µs (wide: lo, hi). */
  firstItemSumMicros: 10,
  /** Streams that delivered a first item (wide: lo, hi). */
  firstItems: 12,
  /** Longest time to a first item, in µs. */
  firstItemMaxMicros: 14,
  /** First word of the key-wait histogram (as a stripe's latency histogram). */
  keyWaitHistogram: LINE_BYTES / 4,
  /** First word of the call-duration histogram. */
  callHistogram: (LINE_BYTES + HISTOGRAM_BYTES) / 4,
  /** First word of the queue-wait histogram. */
  queueWaitHistogram: (LINE_BYTES + 2 * HISTOGRAM_BYTES) / 4,
} as const;

export const HEADER_BYTES = LINE_BYTES;
/** Breaker line + limiter line + the main block (main line and its three histograms). */
export const CONTROL_BYTES = 3 * LINE_BYTES + 3 * HISTOGRAM_BYTES;
const LIMITER_BYTE = LINE_BYTES;
const MAIN_BYTE = 2 * LINE_BYTES;
/** Counters line + histogram lines. */
export const STRIPE_BYTES = LINE_BYTES + HISTOGRAM_BYTES;
export const STRIPE_WORDS = STRIPE_BYTES / 4;

/**
 * Offsets of one region, given its stripe count. Every method is O(1) arithmetic, so recording costs no
 * lookup.
 * @internal
 */
export class RegionLayout {
  /** Bytes per handler slot. */
  readonly handlerBytes: number;
  private readonly handlerWords: number;

  /** @param stripes total stripes, the main thread's included (≥ 2). */
  constructor(readonly stripes: number) {
    this.handlerBytes = CONTROL_BYTES + stripes * STRIPE_BYTES;
    this.handlerWords = this.handlerBytes / 4;
  }

  /** The layout recorded in a region's header; throws when `buffer` is not a metrics region. */
  static of(buffer: SharedArrayBuffer): RegionLayout {
    const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    if (Atomics.load(header, Header.magic) !== MAGIC || Atomics.load(header, Header.version) !== VERSION) {
      throw new TypeError(`buffer is not a version ${VERSION} metrics region`);
    }
    return new RegionLayout(Atomics.load(header, Header.stripes));
  }

  /** Buffer size for `handlers` slots. */
  bytesFor(handlers: number): number {
    return HEADER_BYTES + handlers * this.handlerBytes;
  }

  /** How many slots a buffer of `byteLength` bytes holds. */
  slotsIn(byteLength: number): number {
    return Math.floor((byteLength - HEADER_BYTES) / this.handlerBytes);
  }

  /** 32-bit word index of a handler's breaker line (add a `Breaker` index). */
  breakerWord(slot: number): number {
    return HEADER_BYTES / 4 + slot * this.handlerWords;
  }

  /** 64-bit word index of a handler's open-until time. */
  breakerUntilIndex(slot: number): number {
    return (HEADER_BYTES + slot * this.handlerBytes + Breaker.untilMicrosByte) / 8;
  }

  /** 64-bit word index of a handler's limiter word. */
  limiterIndex(slot: number): number {
    return (HEADER_BYTES + slot * this.handlerBytes + LIMITER_BYTE) / 8;
  }

  /** 32-bit word index of a handler's main block (add a `Main` index). */
  mainWord(slot: number): number {
    return (HEADER_BYTES + MAIN_BYTE) / 4 + slot * this.handlerWords;
  }

  /** 32-bit word index of a stripe's counters line (add a `Stripe` index). */
  stripeWord(slot: number, stripe: number): number {
    return (HEADER_BYTES + CONTROL_BYTES + stripe * STRIPE_BYTES) / 4 + slot * this.handlerWords;
  }
}
