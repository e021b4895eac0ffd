/**
 * One 32-bit word per in-flight pooled task, in a growable SharedArrayBuffer that the main thread and every
 * pool thread see. The word is `generation << 2 | cancelled << 1 | started`:
 *
 *   main  acquire(slot)   word = gen << 2                        (queued)
 *   thread start          CAS gen << 2 → gen << 2 | STARTED      fails if cancelled first: the handler never runs
 *   main  cancel          CAS word → word | CANCELLED            tells whether the handler had started
 *   main  release         word = (gen + 1) << 2, notify          a stale holder now reads "cancelled"
 *
 * The generation makes slot reuse ABA-safe: a thread that still holds an old task compares against the
 * generation it was given, so a reused slot never looks live to it. `Atomics.notify` on release and on
 * cancel wakes a thread that waits on the word to fire `ctx.signal`.
 */
export const STARTED = 1;
export const CANCELLED = 2;
const GEN_SHIFT = 2;
// 28 bits of generation keep every word positive; wrapping is harmless (no task outlives 2^28 reuses of its slot).
const GEN_MASK = 0x0fff_ffff;

const initialSlots = 1024;
const bytesPerSlot = 4;

/** The thread side: reads a task's flag. @internal */
export class CancelFlagsView {
  readonly words: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer) {
    // Length-tracking view: it follows the buffer when the main thread grows it.
    this.words = new Int32Array(buffer);
  }

  /** Marks the task started; false when it was cancelled (or its slot recycled) before it started. */
  start(slot: number, gen: number): boolean {
    const live = gen << GEN_SHIFT;
    return Atomics.compareExchange(this.words, slot, live, live | STARTED) === live;
  }

  /** True once the task's caller gave up on it (or its slot moved on to another task). */
  isCancelled(slot: number, gen: number): boolean {
    return (Atomics.load(this.words, slot) & ~STARTED) !== gen << GEN_SHIFT;
  }
}

/** The main-thread side: owns slot allocation. @internal */
export class CancelFlags extends CancelFlagsView {
  private readonly free: number[] = [];
  private next = 0;

  constructor(readonly maxSlots: number) {
    super(
      new SharedArrayBuffer(Math.min(initialSlots, maxSlots) * bytesPerSlot, {
        maxByteLength: maxSlots * bytesPerSlot,
      }),
    );
  }

  /** Takes a free slot for a new task; -1 when all `maxSlots` are in use. */
  acquire(): number {
    const slot = this.free.pop();
    if (slot !== undefined) return slot;
    if (this.next === this.maxSlots) return -1;
    if (this.next === this.words.length) {
      this.buffer.grow(Math.min(this.words.length * 2, this.maxSlots) * bytesPerSlot);
    }
    return this.next++;
  }

  /** The generation a task in `slot` must present. */
  generation(slot: number): number {
    return (Atomics.load(this.words, slot) >>> GEN_SHIFT) & GEN_MASK;
  }

  /** Sets the cancelled bit for the task of generation `gen`; true when its handler had already started. */
  cancel(slot: number, gen: number): boolean {
    for (;;) {
      const word = Atomics.load(this.words, slot);
      if (word >>> GEN_SHIFT !== gen) return false;
      if (Atomics.compareExchange(this.words, slot, word, word | CANCELLED) === word) {
        Atomics.notify(this.words, slot);
        return (word & STARTED) !== 0;
      }
    }
  }

  /** Returns the slot once its task has settled on the thread side; bumps the generation. */
  release(slot: number): void {
    const gen = this.generation(slot);
    Atomics.store(this.words, slot, ((gen + 1) & GEN_MASK) << GEN_SHIFT);
    Atomics.notify(this.words, slot);
    this.free.push(slot);
  }

  get inUse(): number {
    return this.next - this.free.length;
  }
}
