/**
 * 64-bit counters in shared memory, as two 32-bit words updated with `Atomics.add` — BigInt64 atomics
 * would allocate a BigInt per add and cost twice as much on the hot path.
 *
 *   word i     low 32 bits, wrapping
 *   word i+1   half-turns: how many times the low word's top bit has flipped (crossed 2^31 or wrapped)
 *
 * A writer adds to the low word and, when the add flipped the top bit, counts a half-turn. Counting half
 * turns instead of wraps is what lets a reader be exact without a lock: in between the writer's two adds the
 * high word lags the low word by one half-turn, and the low word's top bit tells the reader whether it
 * lags (see `readWide`). This holds while at most one half-turn is pending, i.e. unless a writer stalls
 * between two instructions while others on the same stripe add 2^31 more — a stripe normally has one writer.
 */

/** Adds `amount` (0 ≤ amount < 2^31) to the wide counter at words `index`, `index + 1`. */
export function addWide(words: Uint32Array, index: number, amount: number): void {
  const before = Atomics.add(words, index, amount);
  if ((before + amount) >>> 31 !== before >>> 31) Atomics.add(words, index + 1, 1);
}

/**
 * {@link addWide} without atomics, for words only the writing thread ever reads (the main block of the
 * metrics region: written and read on the main thread alone) — it saves two locked instructions per add.
 */
export function addWideLocal(words: Uint32Array, index: number, amount: number): void {
  const before = words[index] as number;
  const after = (before + amount) >>> 0;
  words[index] = after;
  if (after >>> 31 !== before >>> 31) words[index + 1] = ((words[index + 1] as number) + 1) >>> 0;
}

/** Reads the wide counter at words `index`, `index + 1`, as a number (exact up to 2^53). */
export function readWide(words: Uint32Array, index: number): number {
  for (;;) {
    const halfTurns = Atomics.load(words, index + 1);
    const low = Atomics.load(words, index);
    // A half-turn completed between the two reads: the pair is from two different moments; read again.
    if (Atomics.load(words, index + 1) !== halfTurns) continue;
    // Steady state: halfTurns = 2 × wraps + topBit. With one half-turn pending it is one less; both cases
    // give the same wraps once rounded down.
    const wraps = Math.floor((halfTurns - (low >>> 31) + 1) / 2);
    return wraps * 2 ** 32 + low;
  }
}

/** Raises the word at `index` to `value` if it is lower; a store only when the maximum actually moves. */
export function raiseMax(words: Uint32Array, index: number, value: number): void {
  // A plain read first, so the common case (no new maximum) costs no atomic operation. The word only ever
  // rises, so a stale read is lower than the truth: at worst the CAS below fails once and reads it.
  let seen = words[index] ?? 0;
  while (value > seen) {
    const witnessed = Atomics.compareExchange(words, index, seen, value);
    if (witnessed === seen) return;
    seen = witnessed;
  }
}
