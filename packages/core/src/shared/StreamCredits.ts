/**
 * Flow control of streaming queries: one 32-bit word per cancel slot (see CancelFlags.ts), in a growable
 * SharedArrayBuffer the main thread and every pool thread see. A stream's task owns the word of its cancel
 * slot while it runs; the word holds the items its producer may still produce:
 *
 *   main    open(slot, n)     word = n                                   before the task is posted
 *   thread  take              n = exchange(word, 0)                      credits move to the thread's own count
 *   thread  wait              Atomics.waitAsync(word, 0)                 only with none left, after sending its items
 *   main    grant(slot, n)    add(word, n), notify                       the consumer took n items
 *   main    wake(slot)        add(word, WAKE), notify                    a cancel: the thread wakes and sees its flag
 *
 * The producer is never more than the credits it was given ahead of the consumer, so neither side's memory
 * grows with a slow consumer. The word is only read as a count by the thread that takes it; `WAKE` is large
 * enough that a woken producer always finds credits and so goes on to its cancel check, never back to sleep
 * — a cancel that lands between its check and its wait cannot be missed (the wait compares against 0).
 * @internal
 */
export const WAKE = 0x4000_0000;

const initialSlots = 1024;
const bytesPerSlot = 4;

/** The thread side: takes credits, waits for them. @internal */
export class StreamCreditsView {
  readonly words: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer) {
    // Length-tracking: it follows the buffer when the main thread grows it (per chunk, not per item).
    this.words = new Int32Array(buffer);
  }

  /** Takes every credit of `slot`: the count the producer may now produce (≥ WAKE after a wake). */
  take(slot: number): number {
    return Atomics.exchange(this.words, slot, 0);
  }

  /** Resolves when credits arrive or the main thread wakes `slot`; at once when some are there already. */
  wait(slot: number): Promise<unknown> | undefined {
    const waited = Atomics.waitAsync(this.words, slot, 0);
    return waited.async ? waited.value : undefined;
  }
}

/** The main-thread side: opens a slot's word for a stream, grants credits, wakes its producer. @internal */
export class StreamCredits extends StreamCreditsView {
  constructor(readonly maxSlots: number) {
    super(
      new SharedArrayBuffer(Math.min(initialSlots, maxSlots) * bytesPerSlot, {
        maxByteLength: maxSlots * bytesPerSlot,
      }),
    );
  }

  /** Gives the stream in `slot` its first `credits` (growing the buffer to hold the slot). */
  open(slot: number, credits: number): void {
    if (slot >= this.words.length) {
      let slots = this.words.length;
      while (slots <= slot) slots *= 2;
      this.buffer.grow(Math.min(slots, this.maxSlots) * bytesPerSlot);
    }
    Atomics.store(this.words, slot, credits);
  }

  /** The consumer took `n` items: the producer may produce `n` more. */
  grant(slot: number, n: number): void {
    Atomics.add(this.words, slot, n);
    Atomics.notify(this.words, slot);
  }

  /** Wakes a producer waiting for credits, so it sees its task's cancel flag. */
  wake(slot: number): void {
    Atomics.add(this.words, slot, WAKE);
    Atomics.notify(this.words, slot);
  }
}
