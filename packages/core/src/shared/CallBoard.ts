import { Deserializer, Serializer } from 'node:v8';

/**
 * The pool's next calls, in shared memory, for whichever thread frees first (see TaskScheduler.ts). While
 * every thread is busy, the main thread pins waiting calls here; a thread that finishes its call takes the
 * oldest one at once and runs it, instead of answering and sleeping until the main thread's next message
 * reaches it. That round trip — two wake-ups of sleeping threads — costs a thread 0.1–0.3 ms per call on a
 * 2-core VM, more than a 0.2 ms handler itself. A message posted ahead to one thread (piscina's
 * `concurrentTasksPerWorker`) would hide it too, but it waits behind that thread's call even when another
 * thread is idle, or forever behind a call that waits for it; a call here goes to the first thread free.
 *
 * Entries, each a state word, a sequence number, a length and a fixed data area holding one serialized
 * message (a task or a batch, see protocol.ts):
 *
 *   main    pin        data, seq, len; state FREE → READY                  only into a FREE entry
 *   thread  take       CAS state READY → TAKEN + threadId (oldest seq)     the thread now owns the message
 *   thread  release    state → FREE                                        after its outcomes are posted
 *   main    reclaim    CAS state READY → FREE                              a thread went idle: post it instead
 *
 * A thread releases its entry only after posting the outcomes, so if it dies running the message, its
 * entry still names it: the main thread then reruns the tasks that never started and fails the one that
 * did (`takenBy`). The main thread is the only writer of data; an entry is rewritten only once FREE.
 * @internal
 */
export const FREE = 0;
export const READY = 1;
/** `TAKEN + threadId`: taken by that thread (thread ids are ≥ 0). */
const TAKEN = 2;

/** Header words: READY entries; the threads' recent time per call, in tenths of a µs. */
const HEADER = 2;
/** Words per entry: state, sequence, length. */
const WORDS = 3;
/** Each entry's data area: a message that serializes larger goes the usual way (a piscina message). */
export const ENTRY_BYTES = 16 * 1024;

/** The thread side: takes the oldest pinned message, releases it when done. @internal */
export class CallBoardView {
  protected readonly words: Int32Array;
  protected readonly bytes: Uint8Array;
  readonly entries: number;
  constructor(readonly buffer: SharedArrayBuffer) {
    this.entries = Math.floor((buffer.byteLength - HEADER * 4) / (WORDS * 4 + ENTRY_BYTES));
    // Word 0 counts the READY entries, so an empty board costs one load.
    this.words = new Int32Array(buffer, 0, HEADER + this.entries * WORDS);
    this.bytes = new Uint8Array(buffer, this.dataOffset(0));
  }

  protected dataOffset(entry: number): number {
    return (HEADER + this.entries * WORDS) * 4 + entry * ENTRY_BYTES;
  }

  /** True when some message waits here. */
  get pinned(): boolean {
    return Atomics.load(this.words, 0) > 0;
  }

  /** Takes the oldest pinned message for thread `threadId`: its entry and the message, or undefined. */
  take(threadId: number): { entry: number; message: unknown } | undefined {
    while (Atomics.load(this.words, 0) > 0) {
      let oldest = -1;
      let oldestSeq = 0;
      for (let e = 0; e < this.entries; e++) {
        if (Atomics.load(this.words, HEADER + e * WORDS) !== READY) continue;
        const seq = Atomics.load(this.words, HEADER + 1 + e * WORDS);
        if (oldest < 0 || seq - oldestSeq < 0) {
          oldest = e;
          oldestSeq = seq;
        }
      }
      if (oldest < 0) return undefined;
      if (Atomics.compareExchange(this.words, HEADER + oldest * WORDS, READY, TAKEN + threadId) !== READY)
        continue;
      Atomics.sub(this.words, 0, 1);
      const at = this.dataOffset(oldest) - this.dataOffset(0);
      const length = Atomics.load(this.words, HEADER + 2 + oldest * WORDS);
      const reader = new Deserializer(this.bytes.subarray(at, at + length));
      reader.readHeader();
      return { entry: oldest, message: reader.readValue() };
    }
    return undefined;
  }

  /**
   * A thread ran a call for `micros`: kept as the threads' recent time per call (a moving average; the
   * threads' writes may interleave, which only blurs it), which tells the pool whether calls are worth
   * batching (TaskScheduler.batchFor).
   */
  recordCallTime(micros: number): void {
    const tenths = Math.min(Math.round(micros * 10), 0x3fff_ffff);
    const recent = Atomics.load(this.words, 1);
    Atomics.store(this.words, 1, recent === 0 ? tenths : Math.round((recent * 7 + tenths) / 8));
  }

  /** The threads' recent time per call, in µs (0 before the first). */
  get recentCallMicros(): number {
    return Atomics.load(this.words, 1) / 10;
  }

  /**
   * Waits up to `ms` for a message to be pinned (at once when one is): a thread that has just sent its
   * outcome lets the main thread turn it into the caller's next call. Blocks the thread, sleeping.
   */
  awaitPin(ms: number): void {
    Atomics.wait(this.words, 0, 0, ms);
  }

  /** The thread is done with `entry` (its outcomes are posted): the main thread may pin another message there. */
  release(entry: number): void {
    Atomics.store(this.words, HEADER + entry * WORDS, FREE);
  }
}

/** The main-thread side: pins messages, takes back the ones no thread took, finds a dead thread's. @internal */
export class CallBoard extends CallBoardView {
  private seq = 0;

  constructor(entries: number) {
    super(new SharedArrayBuffer((HEADER + entries * WORDS) * 4 + entries * ENTRY_BYTES));
  }

  /** A FREE entry, or -1 when every entry holds a message. */
  freeEntry(): number {
    for (let e = 0; e < this.entries; e++)
      if (Atomics.load(this.words, HEADER + e * WORDS) === FREE) return e;
    return -1;
  }

  /**
   * Pins `message` into FREE entry `entry`; false (nothing pinned) when it does not serialize (a value
   * structured clone refuses, which the usual way reports) or does not fit.
   */
  pin(entry: number, message: unknown): boolean {
    let data: Buffer;
    try {
      const writer = new Serializer();
      writer.writeHeader();
      writer.writeValue(message);
      data = writer.releaseBuffer();
    } catch {
      return false;
    }
    if (data.length > ENTRY_BYTES) return false;
    this.bytes.set(data, this.dataOffset(entry) - this.dataOffset(0));
    Atomics.store(this.words, HEADER + 1 + entry * WORDS, this.seq++ | 0);
    Atomics.store(this.words, HEADER + 2 + entry * WORDS, data.length);
    Atomics.store(this.words, HEADER + entry * WORDS, READY);
    Atomics.add(this.words, 0, 1);
    Atomics.notify(this.words, 0, 1);
    return true;
  }

  /** True when `entry` is still READY (no thread has taken it). */
  isReady(entry: number): boolean {
    return Atomics.load(this.words, HEADER + entry * WORDS) === READY;
  }

  /** Takes `entry` back if no thread has taken it; true when it did. */
  reclaim(entry: number): boolean {
    if (Atomics.compareExchange(this.words, HEADER + entry * WORDS, READY, FREE) !== READY) return false;
    Atomics.sub(this.words, 0, 1);
    return true;
  }

  /** True when thread `threadId` took `entry` and has not released it. */
  takenBy(entry: number, threadId: number): boolean {
    return Atomics.load(this.words, HEADER + entry * WORDS) === TAKEN + threadId;
  }
}
