import { availableParallelism } from 'node:os';
import { isCqrsError } from '../errors/CqrsError.js';
import { type CircuitState, circuitStateAt, transitionCounts } from './breakerState.js';
import { addWideLocal, readWide } from './counters.js';
import { BUCKETS, bucketIndex, bucketLowerBound, bucketUpperBound, quantileFromCounts } from './histogram.js';
import {
  Breaker,
  HEADER_BYTES,
  Header,
  MAGIC,
  MAIN_STRIPE,
  Main,
  RegionLayout,
  Stripe,
  VERSION,
} from './layout.js';
import { MAX_LATENCY_MICROS, MetricsView, wholeMicros } from './MetricsView.js';

/** Sizing of a metrics region. */
export interface MetricsRegionOptions {
  /** Stripes for pool threads (the main thread has its own); ideally the pool's thread count. Default: CPUs, at most 64. */
  threadStripes?: number;
  /** Handler slots the buffer starts with. Default 16. */
  initialHandlers?: number;
  /** Handler slots the buffer may grow to; its maximum byte length is reserved up front. Default 1024. */
  maxHandlers?: number;
}

/** Latency figures of one handler, in milliseconds; zeros until a call was timed. */
export interface LatencySummary {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Figures of one handler, summed over all threads. */
export interface HandlerMetrics {
  executions: number;
  failures: number;
  inFlight: number;
  latency: LatencySummary;
  circuit: CircuitState;
  /**
   * Failures by the `code` of the error the caller got (`UNKNOWN` for an error that is no `CqrsError`, which
   * only a custom middleware can produce). Counted on the main thread when a failure settles there, so for
   * the moment a pool thread's failure is on its way back this may sum to one less than `failures`.
   */
  failuresByCode: Record<string, number>;
  /** Per-key order figures, for a handler registered with an `orderingKey`. */
  ordering?: OrderingMetrics;
  /** Streaming figures, for a streaming query's handler (`defineStreamQuery`). */
  stream?: StreamMetrics;
}

/** Figures of a streaming query's handler; its `latency` is each stream's whole duration. */
export interface StreamMetrics {
  /** Items that reached the main thread (every stream, every attempt). */
  items: number;
  /** Time from a stream's start to its first item on the main thread, in milliseconds. */
  firstItem: { count: number; mean: number; max: number };
}

/** Per-key order figures of a handler registered with an `orderingKey`. */
export interface OrderingMetrics {
  /** Calls waiting now for their key (a call holding its key is not waiting). */
  waiting: number;
  /** How long calls waited for their key before their turn, in milliseconds (calls that never waited count as 0). */
  wait: LatencySummary & { count: number };
}

/** The `getMetrics()` shape of API.md: bus totals and per-handler figures. */
export interface MetricsSnapshot {
  executions: number;
  failures: number;
  inFlight: number;
  handlers: Record<string, HandlerMetrics>;
}

/**
 * The main thread's side of the metrics region: allocates a slot per handler name (growing the buffer
 * without moving a count), records what happens on the main thread into stripe 0, and sums all stripes
 * into snapshots. Pool threads get `buffer` and record through a `MetricsView`.
 * @internal
 */
export class MetricsRegion extends MetricsView {
  /** Failures by error code, per slot (see recordFailureCode). */
  private readonly failureCodes: (Record<string, number> | undefined)[] = [];
  /** Handler slots the buffer may grow to. */
  readonly maxHandlers: number;
  private readonly slots = new Map<string, number>();
  private readonly names: string[] = [];
  private ints: Int32Array;

  /** @throws TypeError naming the option that is out of range. */
  constructor(options: MetricsRegionOptions = {}) {
    super(createRegion(options));
    this.maxHandlers = this.layout.slotsIn(this.buffer.maxByteLength);
    this.ints = new Int32Array(this.buffer, 0, this.buffer.byteLength / 4);
  }

  protected override remap(): void {
    super.remap();
    this.ints = new Int32Array(this.buffer, 0, this.buffer.byteLength / 4);
  }

  /**
   * The slot of handler `name`, allocated on first use (the same slot for the same name). Grows the buffer
   * when it is full, without moving a count; a thread that holds the buffer reaches the new slot as soon as
   * it is given its index (its view remaps itself).
   * @throws RangeError when `maxHandlers` slots are taken.
   */
  allocate(name: string): number {
    const known = this.slots.get(name);
    if (known !== undefined) return known;
    const slot = this.names.length;
    if (slot >= this.maxHandlers) {
      throw new RangeError(`metrics region is full: options.maxHandlers is ${this.maxHandlers}`);
    }
    if (slot >= this.layout.slotsIn(this.buffer.byteLength)) {
      const slots = Math.min(this.maxHandlers, 2 * this.layout.slotsIn(this.buffer.byteLength));
      this.buffer.grow(this.layout.bytesFor(slots));
      this.remap();
    }
    this.slots.set(name, slot);
    this.names.push(name);
    Atomics.store(this.ints, Header.handlers, this.names.length);
    return slot;
  }

  /** The slot of a handler already allocated. */
  slotOf(name: string): number | undefined {
    return this.slots.get(name);
  }

  /** Handler names, in slot order. */
  get handlerNames(): readonly string[] {
    return this.names;
  }

  /**
   * Counts the code of a failure of `slot` — wherever the failure itself was counted (here or in a thread):
   * every place that ends a counted attempt with an error calls this once. Main thread only, and only on the
   * failure path, so it lives in a plain table, not in shared memory: successes pay nothing for it.
   */
  recordFailureCode(slot: number, err: unknown): void {
    const code = isCqrsError(err) ? err.code : 'UNKNOWN';
    let table = this.failureCodes[slot];
    if (table === undefined) {
      table = Object.create(null) as Record<string, number>;
      this.failureCodes[slot] = table;
    }
    table[code] = (table[code] ?? 0) + 1;
  }

  /**
   * Moves one failure of `slot` from the code of `counted` to the code of `seen`: a call whose attempt
   * failed inside (counted with that error) while its caller had already been released with another.
   */
  moveFailureCode(slot: number, counted: unknown, seen: unknown): void {
    const from = isCqrsError(counted) ? counted.code : 'UNKNOWN';
    const to = isCqrsError(seen) ? seen.code : 'UNKNOWN';
    const table = this.failureCodes[slot];
    if (from === to || table === undefined || (table[from] ?? 0) === 0) return;
    table[from] = (table[from] as number) - 1;
    if (table[from] === 0) delete table[from];
    table[to] = (table[to] ?? 0) + 1;
  }

  // The main stripe is written by the main thread alone (pool threads claim stripes 1..S), and read by it
  // alone (this object, which exporters and `getMetrics` read, lives on the main thread): its counts need
  // no atomic add, which saves a locked instruction per count on the inline hot path.

  /**
   * Counts an attempt of `slot` timed on the main thread, as `record` does on a thread's stripe: its latency
   * in µs (fractions rounded, clamped) and whether it failed.
   */
  recordAttempt(slot: number, latencyMicros: number, failed: boolean): void {
    const micros = wholeMicros(latencyMicros);
    const base = this.layout.stripeWord(slot, MAIN_STRIPE);
    const words = this.words;
    addWideLocal(words, base + Stripe.histogram + 2 * bucketIndex(micros), 1);
    addWideLocal(words, base + Stripe.latencySumMicros, micros);
    if (micros > (words[base + Stripe.maxMicros] as number)) words[base + Stripe.maxMicros] = micros;
    if (failed) addWideLocal(words, base + Stripe.failures, 1);
    addWideLocal(words, base + Stripe.executions, 1);
  }

  /** Counts a settled call that was not timed (latency sampling skipped it): an execution, and a failure if it failed. */
  recordCount(slot: number, failed: boolean): void {
    const base = this.layout.stripeWord(slot, MAIN_STRIPE);
    if (failed) addWideLocal(this.words, base + Stripe.failures, 1);
    addWideLocal(this.words, base + Stripe.executions, 1);
  }

  /**
   * Adds a failure to a call a pool thread already counted as a success: its thread died after the handler
   * returned but before the result reached the caller, who was told `WORKER_CRASHED`.
   */
  recordLateFailure(slot: number): void {
    addWideLocal(this.words, this.layout.stripeWord(slot, MAIN_STRIPE) + Stripe.failures, 1);
  }

  /**
   * A call of `slot` started. In-flight is kept on the main thread only: a pool thread that is terminated
   * mid-call could never decrement it.
   */
  incrementInFlight(slot: number): void {
    // A plain add, not Atomics: the main thread is the only writer of this word, and an aligned 32-bit store
    // is never torn, so readers elsewhere see a whole value. It saves the locked instruction per call.
    (this.ints[this.layout.stripeWord(slot, MAIN_STRIPE) + Stripe.inFlight] as number) += 1;
  }

  /** A call of `slot` settled (pair with `incrementInFlight`). */
  decrementInFlight(slot: number): void {
    (this.ints[this.layout.stripeWord(slot, MAIN_STRIPE) + Stripe.inFlight] as number) -= 1;
  }

  /** Calls of `slot` waiting for their ordering key: +1 when one starts waiting, -1 when it stops. Main thread only. */
  addKeyWaiting(slot: number, delta: number): void {
    (this.ints[this.layout.mainWord(slot) + Main.keyWaiting] as number) += delta;
  }

  /** One call of `slot` got its key after waiting `micros` (0 when it never waited). Main thread only. */
  recordKeyWait(slot: number, micros: number): void {
    this.recordMain(slot, Main.keyWaitHistogram, Main.keyWaitSumMicros, micros);
  }

  /** One call of `slot` settled `micros` after `execute` (what its caller waited). Main thread only. */
  recordCallDuration(slot: number, micros: number): void {
    this.recordMain(slot, Main.callHistogram, Main.callSumMicros, micros);
  }

  /**
   * One pooled call of `slot` started in its thread `micros` after it was handed to the pool (the time it
   * waited for a thread, and for the calls before it in its batch). Main thread only.
   */
  recordQueueWait(slot: number, micros: number): void {
    this.recordMain(slot, Main.queueWaitHistogram, Main.queueWaitSumMicros, micros);
  }

  /** Adds `micros` to a histogram of the main block and its sum. */
  private recordMain(slot: number, histogram: number, sum: number, micros: number): void {
    const base = this.layout.mainWord(slot);
    // Many waits are zero (a key that was free): one add to the first bucket, nothing to the sum.
    if (!(micros > 0)) {
      addWideLocal(this.words, base + histogram, 1);
      return;
    }
    const value = wholeMicros(micros);
    // The main block is written and read on the main thread only: no atomics needed.
    addWideLocal(this.words, base + histogram + 2 * bucketIndex(value), 1);
    addWideLocal(this.words, base + sum, value);
  }

  /** A histogram of the main block (µs) and its sum. */
  private readMain(slot: number, histogram: number, sum: number): { counts: number[]; sumMicros: number } {
    const base = this.layout.mainWord(slot);
    const counts = new Array<number>(BUCKETS);
    for (let b = 0; b < BUCKETS; b++) counts[b] = readWide(this.words, base + histogram + 2 * b);
    return { counts, sumMicros: readWide(this.words, base + sum) };
  }

  /** The key-wait histogram of `slot` (µs) and its sum, for exporters. @internal */
  readKeyWait(slot: number): { counts: number[]; sumMicros: number; waiting: number } {
    const { counts, sumMicros } = this.readMain(slot, Main.keyWaitHistogram, Main.keyWaitSumMicros);
    return {
      counts,
      sumMicros,
      waiting: Atomics.load(this.ints, this.layout.mainWord(slot) + Main.keyWaiting),
    };
  }

  /** The call-duration histogram of `slot` (µs: execute to settled, as callers saw it) and its sum. @internal */
  readCallDuration(slot: number): { counts: number[]; sumMicros: number } {
    return this.readMain(slot, Main.callHistogram, Main.callSumMicros);
  }

  /** The queue-wait histogram of `slot` (µs: pool.run to the start in a thread) and its sum. @internal */
  readQueueWait(slot: number): { counts: number[]; sumMicros: number } {
    return this.readMain(slot, Main.queueWaitHistogram, Main.queueWaitSumMicros);
  }

  /**
   * The breaker transitions of `slot` so far, by kind, in the order of `TRANSITIONS` (all zero when no
   * breaker guards it). @internal
   */
  readTransitions(slot: number): number[] {
    return transitionCounts(this.ints, this.layout.breakerWord(slot));
  }

  /** `n` items of a stream of `slot` reached the main thread. Main thread only. */
  recordStreamItems(slot: number, n: number): void {
    addWideLocal(this.words, this.layout.mainWord(slot) + Main.streamItems, n);
  }

  /** A stream of `slot` delivered its first item `micros` after it started. Main thread only. */
  recordFirstItem(slot: number, micros: number): void {
    const base = this.layout.mainWord(slot);
    const value = micros > 0 ? (micros < MAX_LATENCY_MICROS ? (micros + 0.5) | 0 : MAX_LATENCY_MICROS) : 0;
    addWideLocal(this.words, base + Main.firstItemSumMicros, value);
    addWideLocal(this.words, base + Main.firstItems, 1);
    if (value > (this.ints[base + Main.firstItemMaxMicros] as number)) {
      this.ints[base + Main.firstItemMaxMicros] = value;
    }
  }

  /** The streaming figures of `slot` (see {@link StreamMetrics}). */
  streamMetrics(slot: number): StreamMetrics {
    const base = this.layout.mainWord(slot);
    const count = readWide(this.words, base + Main.firstItems);
    const sum = readWide(this.words, base + Main.firstItemSumMicros);
    return {
      items: readWide(this.words, base + Main.streamItems),
      firstItem: {
        count,
        mean: count === 0 ? 0 : sum / count / 1000,
        max: Atomics.load(this.ints, base + Main.firstItemMaxMicros) / 1000,
      },
    };
  }

  /** The per-key order figures of `slot` (see {@link OrderingMetrics}). */
  orderingMetrics(slot: number): OrderingMetrics {
    const { counts, sumMicros, waiting } = this.readKeyWait(slot);
    let count = 0;
    let top = -1;
    for (let b = 0; b < BUCKETS; b++) {
      const n = counts[b] as number;
      count += n;
      if (n > 0) top = b;
    }
    const ms = (micros: number) => micros / 1000;
    // No maximum is kept: the top quantile is the upper bound of the highest bucket used.
    const max = top < 0 ? 0 : bucketTop(top);
    return {
      waiting,
      wait:
        count === 0
          ? { count, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
          : {
              count,
              mean: ms(sumMicros / count),
              p50: ms(quantileFromCounts(counts, 0.5, max)),
              p95: ms(quantileFromCounts(counts, 0.95, max)),
              p99: ms(quantileFromCounts(counts, 0.99, max)),
              max: ms(max),
            },
    };
  }

  /** The latency histogram of `slot` summed over stripes: `BUCKETS` counts of µs (see histogram.ts). */
  readHistogram(slot: number): number[] {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (let stripe = 0; stripe < this.stripes; stripe++) {
      const base = this.layout.stripeWord(slot, stripe) + Stripe.histogram;
      for (let b = 0; b < BUCKETS; b++) counts[b] = (counts[b] ?? 0) + readWide(this.words, base + 2 * b);
    }
    return counts;
  }

  /**
   * The latency histogram of `slot` and the sum of the latencies it counts, summed over stripes, for
   * exporters that publish the histogram itself (Prometheus). `counts` are the timed calls only: refusals
   * and untimed (sampled-out) calls are in `executions` but not here, so `sumMicros / Σ counts` is their mean.
   * @internal
   */
  readLatency(slot: number): { counts: number[]; sumMicros: number } {
    const counts = new Array<number>(BUCKETS).fill(0);
    let sumMicros = 0;
    for (let stripe = 0; stripe < this.stripes; stripe++) {
      const base = this.layout.stripeWord(slot, stripe);
      // Sum before buckets: `record` adds the bucket first, so every latency in the sum is in a bucket too.
      sumMicros += readWide(this.words, base + Stripe.latencySumMicros);
      for (let b = 0; b < BUCKETS; b++) {
        counts[b] = (counts[b] ?? 0) + readWide(this.words, base + Stripe.histogram + 2 * b);
      }
    }
    return { counts, sumMicros };
  }

  /** The circuit state of `slot` ('closed' when no breaker guards it). @internal */
  circuitState(slot: number): CircuitState {
    return circuitStateAt(this.ints, this.layout.breakerWord(slot) + Breaker.state);
  }

  /** The figures of one handler slot, summed over every thread's stripe. */
  handlerMetrics(slot: number): HandlerMetrics {
    const words = this.words;
    const counts = new Array<number>(BUCKETS).fill(0);
    let executions = 0;
    let failures = 0;
    let sumMicros = 0;
    let maxMicros = 0;
    for (let stripe = 0; stripe < this.stripes; stripe++) {
      const base = this.layout.stripeWord(slot, stripe);
      // Executions first: `record` adds them last, so whatever is counted here has its latency below.
      const stripeExecutions = readWide(words, base + Stripe.executions);
      if (stripeExecutions === 0) {
        // Fix: `recordLateFailure` puts a failure on the main stripe for a call a thread counted on its own
        // stripe, so the main stripe can hold failures without executions; skipping it lost them. Only the
        // main stripe: it is written by this thread alone, so reading it here races with nothing.
        if (stripe === MAIN_STRIPE) failures += readWide(words, base + Stripe.failures);
        continue;
      }
      executions += stripeExecutions;
      failures += readWide(words, base + Stripe.failures);
      sumMicros += readWide(words, base + Stripe.latencySumMicros);
      maxMicros = Math.max(maxMicros, Atomics.load(words, base + Stripe.maxMicros));
      for (let b = 0; b < BUCKETS; b++) {
        counts[b] = (counts[b] ?? 0) + readWide(words, base + Stripe.histogram + 2 * b);
      }
    }
    let timed = 0;
    for (const count of counts) timed += count;
    const ms = (micros: number) => micros / 1000;
    return {
      executions,
      failures,
      inFlight: Atomics.load(this.ints, this.layout.stripeWord(slot, MAIN_STRIPE) + Stripe.inFlight),
      latency:
        timed === 0
          ? { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
          : {
              mean: ms(sumMicros / timed),
              p50: ms(quantileFromCounts(counts, 0.5, maxMicros)),
              p95: ms(quantileFromCounts(counts, 0.95, maxMicros)),
              p99: ms(quantileFromCounts(counts, 0.99, maxMicros)),
              max: ms(maxMicros),
            },
      circuit: this.circuitState(slot),
      failuresByCode: { ...this.failureCodes[slot] },
    };
  }

  /** Totals and per-handler figures across all threads, latencies in milliseconds (the API.md shape). */
  snapshot(): MetricsSnapshot {
    return this.snapshotOf(this.names.map((name, slot) => [name, slot] as const));
  }

  /** Like `snapshot`, for the given handlers only, reported under the given names (one bus's share of a region). */
  snapshotOf(entries: Iterable<readonly [name: string, slot: number]>): MetricsSnapshot {
    let executions = 0;
    let failures = 0;
    let inFlight = 0;
    const handlers = [...entries].map(([name, slot]) => {
      const figures = this.handlerMetrics(slot);
      executions += figures.executions;
      failures += figures.failures;
      inFlight += figures.inFlight;
      return [name, figures] as const;
    });
    // fromEntries defines own properties: a handler named "__proto__" is a key like any other.
    return { executions, failures, inFlight, handlers: Object.fromEntries(handlers) };
  }
}

/** The largest value bucket `index` holds (its lower bound for the overflow bucket). */
function bucketTop(index: number): number {
  const upper = bucketUpperBound(index);
  return upper === Number.POSITIVE_INFINITY ? bucketLowerBound(index) : upper - 1;
}

function positiveInteger(
  options: MetricsRegionOptions,
  key: keyof MetricsRegionOptions,
  fallback: number,
): number {
  const value = options[key] ?? fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`options.${key} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function createRegion(options: MetricsRegionOptions): SharedArrayBuffer {
  const threadStripes = positiveInteger(options, 'threadStripes', Math.min(64, availableParallelism()));
  const maxHandlers = positiveInteger(options, 'maxHandlers', 1024);
  const initialHandlers = Math.min(maxHandlers, positiveInteger(options, 'initialHandlers', 16));
  const layout = new RegionLayout(threadStripes + 1);
  if (layout.bytesFor(maxHandlers) > 2 ** 31 - 1) {
    throw new TypeError(
      `options.maxHandlers × options.threadStripes reserve more than 2 GiB; lower one of them`,
    );
  }
  const buffer = new SharedArrayBuffer(layout.bytesFor(initialHandlers), {
    maxByteLength: layout.bytesFor(maxHandlers),
  });
  const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  header[Header.stripes] = layout.stripes;
  header[Header.version] = VERSION;
  // Magic last: a region is recognisable only once its header is complete.
  Atomics.store(header, Header.magic, MAGIC);
  return buffer;
}
