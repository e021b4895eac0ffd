/**
 * One 32-bit word per in-flight pooled task, in a growable SharedArrayBuffer that the main thread and every
 * pool thread see. The word is `generation << 4 | flags`:
 *
 *   main    acquire(slot)   word = gen << 4                              (queued)
 *   thread  start           CAS live → live | STARTED                    fails if cancelled first: the handler never runs
 *   thread  finish          CAS live | STARTED → … | DONE (| FAILED)     fails if cancelled first: the caller was told ABORTED
 *   main    cancel          CAS word → word | CANCELLED                  unless DONE: then the outcome is on its way
 *   thread  finish          CAS … | CANCELLED → … | ENDED                the cancelled handler returned in time
 *   main    claim           CAS … | CANCELLED → … | TERMINATING          past the grace period, unless ENDED
 *   main    release         word = (gen + 1) << 6, notify                a stale holder now reads "cancelled"
 *
 * `finish` and `cancel` race for the same word, so exactly one side owns a call's outcome: a handler that
 * finished before the abort landed delivers its result (and the thread counts it in the metrics); one that
 * finishes after does not count, because the main thread counted the abort. That is what keeps metrics exact
 * when callers abort.
 *
 * Past its grace period, a cancelled call still running has its thread terminated. The last two steps race
 * for that word too, so the pool never terminates a thread that has moved on to other calls: `claim` fails
 * once the handler ENDED, and a thread whose `finish` finds TERMINATING starts nothing more (it leaves).
 *
 * Beside the words, a second buffer holds each slot's start time and the id of the thread that started it:
 * a thread writes them just before `start`, and the main thread reads them once it sees STARTED — the time to
 * work out how long the call waited for a thread, the id to terminate the thread that runs a call past its
 * grace period (a call that may be terminated travels in batches and on the board like any other).
 *
 * The generation makes slot reuse ABA-safe: a thread that still holds an old task compares against the
 * generation it was given, so a reused slot never looks live to it. `Atomics.notify` on release and on
 * cancel wakes a thread that waits on the word to fire `ctx.signal`.
 */
export const STARTED = 1;
export const CANCELLED = 2;
export const DONE = 4;
export const FAILED = 8;
export const ENDED = 16;
export const TERMINATING = 32;
const GEN_SHIFT = 6;
// 24 bits of generation keep every word positive; wrapping is harmless: a slot is reused only once its task
// settled on the thread side, so no thread holds a task of a generation 2^24 reuses old.
const GEN_MASK = 0x00ff_ffff;

/** What `cancel` found. */
export const CancelResult = {
  /** The slot already serves another task: nothing to cancel. */
  stale: 0,
  /** Still queued: the thread will skip it. */
  queued: 1,
  /** The handler is running: it is told, and may be terminated after the grace period. */
  running: 2,
  /** The handler already finished: its outcome is on its way and stands. */
  done: 3,
} as const;
export type CancelResult = (typeof CancelResult)[keyof typeof CancelResult];

/** What `finish` found, on the thread side. */
export const FinishResult = {
  /** The outcome stands: DONE is set, and the thread counts the call. */
  done: 0,
  /** The caller gave up first (the main thread counted it); ENDED is set, so the thread stays. */
  cancelled: 1,
  /** The caller gave up and the pool is terminating this thread over the call: start nothing more. */
  terminating: 2,
} as const;
export type FinishResult = (typeof FinishResult)[keyof typeof FinishResult];

/** The word of a queued task of generation `gen`. */
export function liveWord(gen: number): number {
  return gen << GEN_SHIFT;
}

const initialSlots = 1024;
const bytesPerSlot = 4;
// Per slot: the start time (wall-clock ms) and the id of the thread running it, as two float64s.
const bytesPerTime = 16;

/** The thread side: reads a task's flag. @internal */
export class CancelFlagsView {
  readonly words: Int32Array;
  /** Per slot, when its task started in its thread: ms of the wall clock (`timeOrigin + now()`). */
  protected readonly times: Float64Array;
  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly timesBuffer: SharedArrayBuffer,
  ) {
    // Length-tracking views: they follow the buffers when the main thread grows them.
    this.words = new Int32Array(buffer);
    this.times = new Float64Array(timesBuffer);
  }

  /**
   * Marks the task started; false when it was cancelled (or its slot recycled) before it started.
   * `atMs` (wall-clock ms), when given, is kept as its start time, and `threadId` as the thread running it:
   * both written before the flag, so whoever sees STARTED sees them too.
   */
  start(slot: number, gen: number, atMs?: number, threadId = -1): boolean {
    const live = liveWord(gen);
    if (atMs !== undefined) this.times[2 * slot] = atMs;
    this.times[2 * slot + 1] = threadId;
    return Atomics.compareExchange(this.words, slot, live, live | STARTED) === live;
  }

  /**
   * Marks the task's outcome delivered (DONE); when the caller gave up first (the main thread counted it),
   * marks that its handler ENDED, unless the pool already claimed this thread for termination.
   */
  finish(slot: number, gen: number, failed: boolean): FinishResult {
    const running = liveWord(gen) | STARTED;
    const done = running | DONE | (failed ? FAILED : 0);
    if (Atomics.compareExchange(this.words, slot, running, done) === running) return FinishResult.done;
    for (;;) {
      const word = Atomics.load(this.words, slot);
      if (word >>> GEN_SHIFT !== gen) return FinishResult.cancelled;
      if ((word & TERMINATING) !== 0) return FinishResult.terminating;
      if (Atomics.compareExchange(this.words, slot, word, word | ENDED) === word)
        return FinishResult.cancelled;
    }
  }

  /** True once the task's caller gave up on it (or its slot moved on to another task). */
  isCancelled(slot: number, gen: number): boolean {
    const word = Atomics.load(this.words, slot);
    return (word & CANCELLED) !== 0 || word >>> GEN_SHIFT !== gen;
  }
}

/** The main-thread side: owns slot allocation. @internal */
export class CancelFlags extends CancelFlagsView {
  private readonly free: number[] = [];
  private next = 0;

  constructor(readonly maxSlots: number) {
    const slots = Math.min(initialSlots, maxSlots);
    super(
      new SharedArrayBuffer(slots * bytesPerSlot, { maxByteLength: maxSlots * bytesPerSlot }),
      new SharedArrayBuffer(slots * bytesPerTime, { maxByteLength: maxSlots * bytesPerTime }),
    );
  }

  /** Takes a free slot for a new task; -1 when all `maxSlots` are in use. */
  acquire(): number {
    const slot = this.free.pop();
    if (slot !== undefined) return slot;
    if (this.next === this.maxSlots) return -1;
    if (this.next === this.words.length) {
      const slots = Math.min(this.words.length * 2, this.maxSlots);
      this.buffer.grow(slots * bytesPerSlot);
      this.timesBuffer.grow(slots * bytesPerTime);
    }
    return this.next++;
  }

  /** When the task in `slot` started, in wall-clock ms, as its thread wrote it; only valid once STARTED is seen. */
  startedAt(slot: number): number {
    return this.times[2 * slot] ?? 0;
  }

  /** The id of the thread that started the task in `slot` (-1: not known); only valid once STARTED is seen. */
  runnerOf(slot: number): number {
    return this.times[2 * slot + 1] ?? -1;
  }

  /** The generation a task in `slot` must present. */
  generation(slot: number): number {
    return (Atomics.load(this.words, slot) >>> GEN_SHIFT) & GEN_MASK;
  }

  /** The flags of `slot` now (STARTED, CANCELLED, DONE, FAILED, ENDED, TERMINATING bits). */
  flags(slot: number): number {
    return Atomics.load(this.words, slot) & ((1 << GEN_SHIFT) - 1);
  }

  /** Sets the cancelled bit for the task of generation `gen`, unless its handler already finished. */
  cancel(slot: number, gen: number): CancelResult {
    for (;;) {
      const word = Atomics.load(this.words, slot);
      if (word >>> GEN_SHIFT !== gen) return CancelResult.stale;
      if ((word & DONE) !== 0) return CancelResult.done;
      if ((word & CANCELLED) !== 0)
        return (word & STARTED) !== 0 ? CancelResult.running : CancelResult.queued;
      if (Atomics.compareExchange(this.words, slot, word, word | CANCELLED) === word) {
        Atomics.notify(this.words, slot);
        return (word & STARTED) !== 0 ? CancelResult.running : CancelResult.queued;
      }
    }
  }

  /**
   * Claims the thread running the cancelled task of generation `gen` for termination: true while its
   * handler still runs (STARTED and CANCELLED, neither DONE nor ENDED). From then on that thread starts
   * nothing more, so terminating it takes no other call with it.
   */
  claim(slot: number, gen: number): boolean {
    for (;;) {
      const word = Atomics.load(this.words, slot);
      if (word >>> GEN_SHIFT !== gen) return false;
      if ((word & (STARTED | CANCELLED | DONE | ENDED | TERMINATING)) !== (STARTED | CANCELLED)) return false;
      if (Atomics.compareExchange(this.words, slot, word, word | TERMINATING) === word) return true;
    }
  }

  /** Returns the slot once its task has settled on the thread side; bumps the generation. */
  release(slot: number): void {
    const gen = this.generation(slot);
    Atomics.store(this.words, slot, liveWord((gen + 1) & GEN_MASK));
    Atomics.notify(this.words, slot);
    this.free.push(slot);
  }

  get inUse(): number {
    return this.next - this.free.length;
  }
}
