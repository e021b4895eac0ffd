/**
 * A circuit breaker whose state lives on a handler's breaker line in the metrics region (layout.ts), so every
 * thread sees and moves the same breaker without locks or messages.
 *
 *   closed ──N consecutive failures──▶ open ──resetAfterMs──▶ half-open ──all probes succeed──▶ closed
 *                                       ▲                        │
 *                                       └──── any probe fails ───┘
 *
 * The state word is `generation << 2 | state`; every transition is one compare-and-swap that bumps the
 * generation, so exactly one thread wins it (and reports it) and a ticket remembers the generation it was
 * issued in: a result arriving after the breaker moved on compares unequal and changes nothing.
 *
 * The per-round counters (failures, probes issued, probes succeeded) carry the low 16 bits of their round's
 * generation beside a 16-bit count. A round's first update replaces an older round's word by CAS, so no
 * thread ever has to reset them on a transition — a reset made after the transition would race with threads
 * already counting in the new round, and one made before it could not know it would win. A thread holding
 * a stale read never overwrites a newer round's word (the tag compares newer), and tags repeat only after
 * 65,536 transitions, far more than a thread can sleep through between one load and its CAS.
 *
 * Hot-path callers (the circuitBreaker middleware) use `acquire` / `report` / `release`, which pass the ticket
 * as one integer (`generation << 1 | probe`) and allocate nothing unless the breaker moves; `tryAcquire` and
 * `onResult` are the same logic with object results.
 */
import { Breaker, RegionLayout } from './layout.js';
import { type Clock, wallClock } from './wallClock.js';

/** Where a breaker is. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Breaker settings (validated at construction). */
export interface BreakerOptions {
  /** Consecutive failures that open a closed breaker, 1..65535. Default 5. */
  failureThreshold?: number;
  /** How long an open breaker refuses calls before it lets probes through, in ms. Default 30 000. */
  resetAfterMs?: number;
  /** Trial calls admitted in half-open, across all threads, 1..65535; all must succeed to close. Default 1. */
  halfOpenProbes?: number;
}

/** Proof of admission; hand it back to `onResult`. */
export interface BreakerTicket {
  /** The generation the call was admitted in. */
  readonly generation: number;
  /** Whether it is a half-open trial call. */
  readonly probe: boolean;
}

/** A state change, reported by the one call that caused it (so `onStateChange` can be built on top). */
export interface BreakerTransition {
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** The generation the breaker entered. */
  readonly generation: number;
  /** The clock time of the change, in ms. */
  readonly at: number;
}

/** What `tryAcquire` decided; `transition` is set when this very call moved the breaker. */
export type BreakerAcquireResult =
  | { readonly admitted: true; readonly ticket: BreakerTicket; readonly transition?: BreakerTransition }
  | { readonly admitted: false; readonly retryAfterMs: number; readonly transition?: BreakerTransition };

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;
const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open'];

/** The transitions a breaker makes, in the order their counters have on the breaker line. */
export const TRANSITIONS: readonly (readonly [from: CircuitState, to: CircuitState])[] = [
  ['closed', 'open'],
  ['open', 'half-open'],
  ['half-open', 'closed'],
  ['half-open', 'open'],
];
// The counter of a transition, by `from * 3 + to` of the state numbers above (-1: not a transition).
const TRANSITION_INDEX = [-1, 0, -1, -1, -1, 1, 2, 3, -1];

/**
 * The transition counters of the breaker whose line starts at 32-bit word `line`, in the order of
 * {@link TRANSITIONS}. 32-bit counts, read as unsigned: 4 billion transitions before one wraps.
 * @internal
 */
export function transitionCounts(ints: Int32Array, line: number): number[] {
  return TRANSITIONS.map((_, i) => Atomics.load(ints, line + Breaker.transitions + i) >>> 0);
}
const STATE_MASK = 3;
// 29 bits of generation keep the state word positive.
const GENERATION_MASK = 0x1fff_ffff;
const COUNT_MASK = 0xffff;
const TAG_MASK = 0xffff;
// Set in the until tag by a breaker whose clock is not the wall clock: a snapshot, which reads the wall
// clock, cannot compare its open-until time. Bit 30 is above any generation and keeps the word positive.
const FOREIGN_CLOCK = 1 << 30;

/**
 * The state of a breaker state word, for snapshots (no options needed). An open breaker whose open-until
 * time has passed (by `now`, wall-clock ms) reads as 'half-open': the next call will probe, though no call has
 * moved the stored word yet. One opened by a breaker on an injected clock reads as stored.
 * @internal
 */
export function circuitStateAt(ints: Int32Array, index: number, now: number = wallClock()): CircuitState {
  for (;;) {
    const word = Atomics.load(ints, index);
    const state = word & STATE_MASK;
    if (state !== OPEN) return STATES[state] ?? 'closed';
    // Unpublished yet (the breaker just opened) or published on another clock: report what is stored.
    if (Atomics.load(ints, index + Breaker.untilTag) !== word >>> 2) return 'open';
    const until = new BigInt64Array(ints.buffer, ints.byteOffset + index * 4 + Breaker.untilMicrosByte, 1);
    const openForMs = Number(Atomics.load(until, 0)) / 1000 - now;
    // The time is that generation's only while the state word still holds it (a later opening rewrites it).
    if (Atomics.load(ints, index) === word) return openForMs > 0 ? 'open' : 'half-open';
  }
}

/**
 * Checks breaker options and fills in the defaults.
 * @throws TypeError naming the option out of range.
 * @internal
 */
export function breakerSettings(options: BreakerOptions): Required<BreakerOptions> {
  const failureThreshold = integerOption('failureThreshold', options.failureThreshold ?? 5);
  const halfOpenProbes = integerOption('halfOpenProbes', options.halfOpenProbes ?? 1);
  const resetAfterMs = options.resetAfterMs ?? 30_000;
  if (!(typeof resetAfterMs === 'number' && resetAfterMs > 0 && Number.isFinite(resetAfterMs))) {
    throw new TypeError(`options.resetAfterMs must be a positive number of ms, got ${String(resetAfterMs)}`);
  }
  return { failureThreshold, resetAfterMs, halfOpenProbes };
}

/** One handler's breaker, usable from any thread holding the region's buffer. @internal */
export class BreakerState {
  readonly failureThreshold: number;
  readonly resetAfterMs: number;
  readonly halfOpenProbes: number;
  private readonly ints: Int32Array;
  private readonly bigs: BigInt64Array;
  private readonly stateIndex: number;
  private readonly untilIndex: number;
  /** What a refused half-open call is told to wait: resetAfterMs in whole ms. */
  private readonly probeWaitMs: number;
  /** `FOREIGN_CLOCK` unless this breaker runs on the wall clock. */
  private readonly clockFlag: number;
  /** The transition the last `acquire` made, until taken. */
  private transition: BreakerTransition | undefined;

  /**
   * @param buffer the metrics region's buffer; `slot` must already be allocated in it.
   * @throws TypeError naming an option out of range; RangeError for a slot the buffer does not hold.
   */
  constructor(
    buffer: SharedArrayBuffer,
    readonly slot: number,
    options: BreakerOptions = {},
    private readonly clock: Clock = wallClock,
  ) {
    const settings = breakerSettings(options);
    this.failureThreshold = settings.failureThreshold;
    this.halfOpenProbes = settings.halfOpenProbes;
    this.resetAfterMs = settings.resetAfterMs;
    this.probeWaitMs = Math.ceil(this.resetAfterMs);
    this.clockFlag = clock === wallClock ? 0 : FOREIGN_CLOCK;
    const layout = RegionLayout.of(buffer);
    if (!(Number.isInteger(slot) && slot >= 0 && slot < layout.slotsIn(buffer.byteLength))) {
      throw new RangeError(`slot ${slot} is not allocated in this region`);
    }
    // Fixed-length views (see layout.ts): the slot is already inside, and stays put as the buffer grows.
    this.ints = new Int32Array(buffer, 0, buffer.byteLength / 4);
    this.bigs = new BigInt64Array(buffer, 0, buffer.byteLength / 8);
    this.stateIndex = layout.breakerWord(slot) + Breaker.state;
    this.untilIndex = layout.breakerUntilIndex(slot);
  }

  /** The state as stored: an open breaker whose reset time passed stays 'open' until a call moves it. */
  state(): CircuitState {
    return circuitStateAt(this.ints, this.stateIndex);
  }

  /** The current generation (bumped by every transition). */
  generation(): number {
    return Atomics.load(this.ints, this.stateIndex) >>> 2;
  }

  /**
   * Asks to run a call. Closed: admitted. Open: refused with the time left, or — once `resetAfterMs` has
   * passed — moved to half-open by whichever thread's CAS wins. Half-open: admitted as a probe while fewer
   * than `halfOpenProbes` were issued this round, across all threads; otherwise refused with
   * `retryAfterMs = resetAfterMs` (the probes' outcome is not known yet).
   */
  tryAcquire(now?: number): BreakerAcquireResult {
    const decision = this.acquire(now);
    const transition = this.takeTransition();
    if (decision < 0) {
      return transition === undefined
        ? { admitted: false, retryAfterMs: -decision }
        : { admitted: false, retryAfterMs: -decision, transition };
    }
    const ticket = { generation: decision >>> 1, probe: (decision & 1) === 1 };
    return transition === undefined ? { admitted: true, ticket } : { admitted: true, ticket, transition };
  }

  /**
   * `tryAcquire` without allocation: an admitted call gets its ticket as `generation << 1 | probe` (≥ 0), a
   * refused one `-retryAfterMs` (≤ −1). A transition this call made is kept for `takeTransition`. The clock
   * is read only when the breaker is open (`now` omitted).
   */
  acquire(now: number = Number.NaN): number {
    const ints = this.ints;
    for (;;) {
      const word = Atomics.load(ints, this.stateIndex);
      const generation = word >>> 2;
      const state = word & STATE_MASK;
      if (state === CLOSED) return generation * 2;
      if (state === OPEN) {
        if (Number.isNaN(now)) now = this.clock();
        const waitMs = this.openFor(generation, now);
        if (waitMs > 0) return -Math.ceil(waitMs);
        this.transition = this.advance(word, HALF_OPEN, now) ?? this.transition;
        continue;
      }
      const probes = this.stateIndex + Breaker.probes;
      const issuedWord = Atomics.load(ints, probes);
      const round = roundOf(issuedWord, generation);
      // A newer round's counter: this generation is over, and the state word will say so.
      if (round > 0) continue;
      const issued = round === 0 ? issuedWord & COUNT_MASK : 0;
      if (issued >= this.halfOpenProbes) return -this.probeWaitMs;
      if (Atomics.compareExchange(ints, probes, issuedWord, pack(generation, issued + 1)) !== issuedWord)
        continue;
      // The probe counts only if the round was still on when it was taken; generations never repeat a
      // word, so an unchanged word means it was on throughout. Otherwise it went to a dead round: harmless.
      if (Atomics.load(ints, this.stateIndex) === word) return generation * 2 + 1;
    }
  }

  /** The transition the last `acquire` made (once; then undefined until another is made). */
  takeTransition(): BreakerTransition | undefined {
    const transition = this.transition;
    if (transition !== undefined) this.transition = undefined;
    return transition;
  }

  /**
   * Reports how an admitted call ended. A ticket from an older generation changes nothing. Closed: a success
   * ends the failure run, the `failureThreshold`-th consecutive failure opens. Half-open: any failure
   * reopens, the last of `halfOpenProbes` successes closes. Returns the transition this result caused.
   */
  onResult(ticket: BreakerTicket, success: boolean, now?: number): BreakerTransition | undefined {
    return this.report(ticket.generation * 2 + (ticket.probe ? 1 : 0), success, now);
  }

  /** `onResult` for a ticket from `acquire`. The clock is read only for a transition (`now` omitted). */
  report(ticket: number, success: boolean, now: number = Number.NaN): BreakerTransition | undefined {
    const word = Atomics.load(this.ints, this.stateIndex);
    const generation = ticket >>> 1;
    if (word >>> 2 !== generation) return undefined;
    const state = word & STATE_MASK;
    if (state === CLOSED) {
      if (success) {
        this.endFailureRun(generation);
        return undefined;
      }
      const failures = this.count(this.stateIndex + Breaker.failures, generation);
      if (failures < this.failureThreshold) return undefined;
      return this.advance(word, OPEN, Number.isNaN(now) ? this.clock() : now);
    }
    if (state === HALF_OPEN) {
      if (!success) return this.advance(word, OPEN, Number.isNaN(now) ? this.clock() : now);
      const successes = this.count(this.stateIndex + Breaker.successes, generation);
      if (successes < this.halfOpenProbes) return undefined;
      return this.advance(word, CLOSED, Number.isNaN(now) ? this.clock() : now);
    }
    return undefined;
  }

  /**
   * Hands back an admitted call that ended neither in success nor in a counted failure (the caller aborted,
   * its input was invalid, …): it changes no count, and a half-open probe's place is given back, so another
   * call may probe in its stead — otherwise the round could never collect its `halfOpenProbes` results and
   * the breaker would stay half-open for good. Accepts a ticket from `acquire` or `tryAcquire`.
   */
  release(ticket: number | BreakerTicket): void {
    const word = typeof ticket === 'number' ? ticket : ticket.generation * 2 + (ticket.probe ? 1 : 0);
    if ((word & 1) === 0) return;
    const generation = word >>> 1;
    const ints = this.ints;
    const probes = this.stateIndex + Breaker.probes;
    for (;;) {
      // The round is over: nothing to give back. Should it end between this load and the CAS below, the
      // decrement lands on a dead round's counter, which the next round replaces by its tag.
      if (Atomics.load(ints, this.stateIndex) >>> 2 !== generation) return;
      const issuedWord = Atomics.load(ints, probes);
      if (roundOf(issuedWord, generation) !== 0) return;
      const issued = issuedWord & COUNT_MASK;
      if (issued === 0) return;
      if (Atomics.compareExchange(ints, probes, issuedWord, pack(generation, issued - 1)) === issuedWord)
        return;
    }
  }

  /** Milliseconds an open breaker of `generation` still refuses calls (≤ 0 when it may half-open). */
  private openFor(generation: number, now: number): number {
    // The winner of the opening CAS publishes the time after its CAS; until then the breaker just opened.
    const tag = Atomics.load(this.ints, this.stateIndex + Breaker.untilTag) & GENERATION_MASK;
    if (tag !== generation) return this.resetAfterMs;
    return Number(Atomics.load(this.bigs, this.untilIndex)) / 1000 - now;
  }

  /** Moves the breaker from `word` to `state` if nobody did first; the winner gets the transition. */
  private advance(word: number, state: number, now: number): BreakerTransition | undefined {
    const generation = ((word >>> 2) + 1) & GENERATION_MASK;
    if (Atomics.compareExchange(this.ints, this.stateIndex, word, (generation << 2) | state) !== word) {
      return undefined;
    }
    // Counted by the CAS's winner alone, so each transition once, on whichever thread made it. After the
    // CAS: a reader may see the new state a moment before its count, never a count ahead of a transition.
    const counter = TRANSITION_INDEX[(word & STATE_MASK) * 3 + state] ?? -1;
    if (counter >= 0) Atomics.add(this.ints, this.stateIndex + Breaker.transitions + counter, 1);
    if (state === OPEN) {
      Atomics.store(this.bigs, this.untilIndex, BigInt(Math.round((now + this.resetAfterMs) * 1000)));
      Atomics.store(this.ints, this.stateIndex + Breaker.untilTag, generation | this.clockFlag);
    }
    return {
      from: STATES[word & STATE_MASK] ?? 'closed',
      to: STATES[state] ?? 'closed',
      generation,
      at: now,
    };
  }

  /** Adds one to a round counter of `generation`; the new count, or -1 when a newer round owns the word. */
  private count(index: number, generation: number): number {
    for (;;) {
      const word = Atomics.load(this.ints, index);
      const round = roundOf(word, generation);
      if (round > 0) return -1;
      const count = round === 0 ? word & COUNT_MASK : 0;
      if (count === COUNT_MASK) return count;
      if (Atomics.compareExchange(this.ints, index, word, pack(generation, count + 1)) === word)
        return count + 1;
    }
  }

  /** Zeroes the failure run of `generation`, writing only when there is a run to end (the common success is a read). */
  private endFailureRun(generation: number): void {
    const index = this.stateIndex + Breaker.failures;
    for (;;) {
      const word = Atomics.load(this.ints, index);
      if (roundOf(word, generation) !== 0 || (word & COUNT_MASK) === 0) return;
      if (Atomics.compareExchange(this.ints, index, word, pack(generation, 0)) === word) return;
    }
  }
}

/** A round counter word: the generation's low 16 bits, then the count. */
function pack(generation: number, count: number): number {
  return ((generation & TAG_MASK) << 16) | count;
}

/** -1 when `word` counts a round older than `generation` (or none yet), 0 for that round, 1 for a newer one. */
function roundOf(word: number, generation: number): number {
  const behind = ((generation & TAG_MASK) - (word >>> 16)) & TAG_MASK;
  return behind === 0 ? 0 : behind < 0x8000 ? -1 : 1;
}

function integerOption(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 1 && value <= COUNT_MASK)) {
    throw new TypeError(`options.${name} must be an integer from 1 to ${COUNT_MASK}, got ${String(value)}`);
  }
  return value;
}
