/**
 * How long a pool's threads were busy — holding at least one call — counted in shared memory by the threads
 * themselves, so that `rate()` of the total is the pool's utilization in thread-seconds per second.
 *
 *   line 0   header  lines │ (unused) │ overflow µs lo,hi (a wide counter, counters.ts)
 *   line i   thread  seq │ owner thread id │ busy µs lo,hi │ busy since µs lo,hi (0: idle)     i = 1..lines
 *                    (a pair: a number below 2^53 as its low and high 32 bits)
 *
 * Each thread claims a free line when it starts (a CAS on `owner`) and is its only writer: when it begins
 * to hold a call it writes `since`, the time in µs of the wall clock every thread shares, and when it holds
 * none any more it adds `now - since` to `busy` and clears `since`. A reader adds `now - since` of a line
 * whose thread is busy, so a long call shows as it runs, not only once it ends; and a thread holding several
 * calls at once (`concurrentTasksPerThread`, a nested call run on the thread that awaits it) is busy once,
 * so the total never exceeds threads × elapsed time.
 *
 * The fields of a line change under `seq`, a sequence lock: odd while they are being written, so a reader
 * that meets an odd or changed `seq` reads again instead of using a half-written pair. The main thread
 * takes the same lock to free the line of a thread that is gone, counting its interrupted call up to then;
 * that is why the writer takes the lock with a compare-and-swap rather than a store. A thread that finds no
 * free line (threads replaced faster than lines are freed) adds each of its busy intervals, as it ends, to
 * the header's overflow counter instead.
 */
import { addWide, readWide } from './counters.js';
import { LINE_BYTES } from './layout.js';

const LINE_WORDS = LINE_BYTES / 4;
/** Header words. */
const LINES = 0;
const OVERFLOW = 2;
/** Words of a thread's line. */
const SEQ = 0;
const OWNER = 1;
const BUSY = 2;
const SINCE = 4;
const TWO_32 = 2 ** 32;
/** Most µs one `addWide` may add. */
const MAX_ADD = 2 ** 31 - 1;
/** Reads of a line being written before a reader falls back on its last consistent read of it. */
const READ_ATTEMPTS = 64;

const timeOrigin = performance.timeOrigin;

/** Now, in whole µs of the wall clock (each thread's `timeOrigin + now()`: the same clock on every thread). */
export function nowMicros(): number {
  return Math.round((timeOrigin + performance.now()) * 1000);
}

// Pairs are kept in Int32 words, each half as a signed 32-bit integer: V8 passes those to Atomics as small
// integers, while an unsigned half of 2^31 or more is a heap number that sends every Atomics.store through
// the runtime (measured: ~5× the cost of the whole write).
function readPair(words: Int32Array, index: number): number {
  return Atomics.load(words, index + 1) * TWO_32 + (Atomics.load(words, index) >>> 0);
}

function writePair(words: Int32Array, index: number, value: number): void {
  Atomics.store(words, index, (value % TWO_32) | 0);
  Atomics.store(words, index + 1, Math.floor(value / TWO_32) | 0);
}

/** Takes the sequence lock of the line at `base`: the new (odd) sequence, or -1 when a writer holds it. */
function tryLock(words: Int32Array, base: number): number {
  const seq = Atomics.load(words, base + SEQ);
  if ((seq & 1) !== 0 || Atomics.compareExchange(words, base + SEQ, seq, (seq + 1) | 0) !== seq) return -1;
  return (seq + 1) | 0;
}

function addOverflow(words: Uint32Array, micros: number): void {
  for (let left = Math.max(0, Math.round(micros)); left > 0; left -= MAX_ADD) {
    addWide(words, OVERFLOW, Math.min(left, MAX_ADD));
  }
}

/**
 * A pool thread's side: marks when the thread begins and stops holding calls. Not thread-safe by design:
 * one per thread.
 * @internal
 */
export class BusyClock {
  private readonly words: Int32Array;
  /** The header's overflow counter is a wide counter (counters.ts), over unsigned words. */
  private readonly overflow: Uint32Array;
  /** First word of this thread's line, or -1 when it has none (it then counts into the overflow). */
  private base = -1;
  private active = 0;
  private since = 0;
  /** The line's busy total: this thread is its only writer while it owns it. */
  private total = 0;

  /** @param clock µs of the wall clock; injectable for tests. */
  constructor(
    buffer: SharedArrayBuffer,
    private readonly threadId: number,
    private readonly clock: () => number = nowMicros,
  ) {
    this.words = new Int32Array(buffer);
    this.overflow = new Uint32Array(buffer);
    const lines = Atomics.load(this.words, LINES);
    for (let line = 1; line <= lines; line++) {
      if (Atomics.compareExchange(this.words, line * LINE_WORDS + OWNER, 0, threadId) === 0) {
        this.base = line * LINE_WORDS;
        // A line given back by the main thread keeps the total of the threads before: it goes on from there.
        // The main thread wrote it before it cleared the owner, so the claim sees it.
        this.total = readPair(this.words, this.base + BUSY);
        break;
      }
    }
  }

  /** The thread takes a call (or a batch of them); the first one it holds starts a busy interval. */
  enter(): void {
    if (this.active++ > 0) return;
    this.since = this.clock();
    if (this.base >= 0) this.write(this.since, false);
  }

  /** The thread is done with a call; when it holds none any more, the busy interval ends. */
  readonly leave = (): void => {
    if (--this.active > 0) return;
    const now = this.clock();
    // A line freed under it (the pool let this thread go) already counts the interval up to then.
    if (this.base >= 0) this.write(now, true);
    else addOverflow(this.overflow, now - this.since);
  };

  /** Writes the start (`ending` false) or the end of an interval into the line; gives the line up if lost. */
  private write(now: number, ending: boolean): void {
    const words = this.words;
    const base = this.base;
    let seq = tryLock(words, base);
    // Held only by the main thread freeing a line, for a few loads and stores: wait it out.
    while (seq < 0) seq = tryLock(words, base);
    if (Atomics.load(words, base + OWNER) !== this.threadId) {
      Atomics.store(words, base + SEQ, (seq + 1) | 0);
      this.base = -1;
      return;
    }
    if (ending) {
      this.total += Math.max(0, now - this.since);
      writePair(words, base + BUSY, this.total);
      writePair(words, base + SINCE, 0);
    } else writePair(words, base + SINCE, now);
    Atomics.store(words, base + SEQ, (seq + 1) | 0);
  }
}

/**
 * The main thread's side: makes the buffer, reads the total, and frees the lines of threads that are gone.
 * @internal
 */
export class BusyTime {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly overflow: Uint32Array;
  private readonly lines: number;
  /** Per line, its last consistent read: busy µs, since µs. */
  private readonly seen: Float64Array;
  /** Lines to free that a writer held when asked (line → the time it was freed at). */
  private readonly freeing = new Map<number, number>();
  /** The largest total reported: a total never goes back, even by a clock's µs between threads. */
  private reported = 0;

  /** @param threads the pool's most threads: twice as many lines, so replacement threads find a free one. */
  constructor(threads: number) {
    this.lines = 2 * threads + 2;
    this.buffer = new SharedArrayBuffer((this.lines + 1) * LINE_BYTES);
    this.words = new Int32Array(this.buffer);
    this.overflow = new Uint32Array(this.buffer);
    Atomics.store(this.words, LINES, this.lines);
    this.seen = new Float64Array(2 * (this.lines + 1));
  }

  /** Thread-µs busy since the pool started, up to `now` (µs of `nowMicros`). Never decreases. */
  busyMicros(now: number = nowMicros()): number {
    this.retryFreeing();
    let total = readWide(this.overflow, OVERFLOW);
    for (let line = 1; line <= this.lines; line++) {
      const frozenAt = this.freeing.get(line);
      if (frozenAt === undefined) this.readLine(line);
      const busy = this.seen[2 * line] as number;
      const since = this.seen[2 * line + 1] as number;
      if (since > 0) total += Math.max(0, (frozenAt ?? now) - since);
      total += busy;
    }
    if (total > this.reported) this.reported = total;
    return this.reported;
  }

  /**
   * Frees the line(s) of thread `threadId`, which the pool let go (or which died): a call it was running
   * counts as busy up to `now`. A line its thread is writing at this very moment is freed at the next read.
   */
  release(threadId: number, now: number = nowMicros()): void {
    for (let line = 1; line <= this.lines; line++) {
      if (Atomics.load(this.words, line * LINE_WORDS + OWNER) !== threadId) continue;
      if (!this.free(line, now)) {
        // Keep the figures as of the last consistent read, capped at now, until the lock can be had.
        this.readLine(line);
        this.freeing.set(line, now);
      }
    }
  }

  private retryFreeing(): void {
    for (const [line, at] of this.freeing) if (this.free(line, at)) this.freeing.delete(line);
  }

  /** Folds a running interval into the line's busy time and gives the line back; false if it is locked. */
  private free(line: number, at: number): boolean {
    const words = this.words;
    const base = line * LINE_WORDS;
    const seq = tryLock(words, base);
    if (seq < 0) return false;
    const since = readPair(words, base + SINCE);
    const busy = readPair(words, base + BUSY) + (since > 0 ? Math.max(0, at - since) : 0);
    writePair(words, base + BUSY, busy);
    writePair(words, base + SINCE, 0);
    Atomics.store(words, base + OWNER, 0);
    Atomics.store(words, base + SEQ, (seq + 1) | 0);
    this.seen[2 * line] = busy;
    this.seen[2 * line + 1] = 0;
    return true;
  }

  /** Reads a line into `seen`; keeps the last consistent read while its writer is in mid-write. */
  private readLine(line: number): void {
    const words = this.words;
    const base = line * LINE_WORDS;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const seq = Atomics.load(words, base + SEQ);
      if ((seq & 1) !== 0) continue;
      const busy = readPair(words, base + BUSY);
      const since = readPair(words, base + SINCE);
      if (Atomics.load(words, base + SEQ) !== seq) continue;
      this.seen[2 * line] = busy;
      this.seen[2 * line + 1] = since;
      return;
    }
  }
}
