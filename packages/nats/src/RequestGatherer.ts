import type { RemoteCall } from './RemoteCall.js';

/** The `batching` limits of a {@link RemoteClient}, resolved. */
export interface BatchLimits {
  /** Most calls in one request message. */
  readonly maxSize: number;
  /** Longest a call is held back while a batch to its subject is in flight, in ms (0: never). */
  readonly maxDelayMs: number;
}

/** The calls to one subject: what is held back, what is out. @internal */
export interface Lane {
  readonly subject: string;
  /** Calls waiting to leave together (some may have settled meanwhile: skipped). */
  held: RemoteCall[];
  /** Calls sent (alone or in batches) and not settled. */
  out: number;
  /** Batch requests sent and not settled in full. */
  batchesOut: number;
  /** A flush at the end of this turn of the event loop is due. */
  scheduled: boolean;
  holdTimer: NodeJS.Timeout | undefined;
  /** `Date.now()` before which calls go one by one (a node that does not read batches answered). */
  unbatchedUntil: number;
}

/** How the gatherer sends what it gathered. */
export interface Sender {
  /** Whether a held call is still to be sent (false: it settled meanwhile, or was abandoned and now is). */
  live(call: RemoteCall): boolean;
  one(call: RemoteCall): void;
  many(lane: Lane, calls: RemoteCall[]): void;
  /** Largest request body the connection takes, in bytes. */
  maxBytes(): number;
}

// Lanes of subjects with nothing held or out are dropped once there are this many (a caller may send to
// ever new subjects through `request`).
const SWEEP_AT = 1024;

/**
 * Decides which calls of a {@link RemoteClient} leave alone and which leave together, per subject:
 *
 * - a call to a subject with nothing in flight and nothing held leaves **at once, alone**: a lone call pays
 *   no batching delay;
 * - otherwise it is held, and what is held leaves at the end of this turn of the event loop (every call
 *   made meanwhile joins: a loop of `execute`s, the callers a reply chunk resumed, the requests of one poll
 *   of the sockets) — as one batch, or several of at most `maxSize` calls and the connection's payload;
 * - while a batch to the subject is in flight the held calls wait for its next reply (or `maxDelayMs`, or
 *   `maxSize` calls), so that a steady stream of calls goes in few messages, as TCP's Nagle does.
 *
 * One call held alone leaves alone (no batch envelope for one call).
 * @internal
 */
export class RequestGatherer {
  private readonly lanes = new Map<string, Lane>();
  private readonly due: Lane[] = [];
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly limits: BatchLimits,
    private readonly sender: Sender,
  ) {}

  /** The lane of `subject`, made on first use. */
  laneFor(subject: string): Lane {
    let lane = this.lanes.get(subject);
    if (lane === undefined) {
      if (this.lanes.size >= SWEEP_AT) this.sweep();
      lane = {
        subject,
        held: [],
        out: 0,
        batchesOut: 0,
        scheduled: false,
        holdTimer: undefined,
        unbatchedUntil: 0,
      };
      this.lanes.set(subject, lane);
    }
    return lane;
  }

  /** A new call (its `lane` set): sent at once, or held. */
  add(call: RemoteCall): void {
    const lane = call.lane as Lane;
    if (lane.held.length === 0 && lane.out === 0) {
      this.sender.one(call);
      return;
    }
    lane.held.push(call);
    if (lane.held.length >= this.limits.maxSize) {
      this.flush(lane);
      // The calls still to come this turn leave at its end, not held behind the batch just sent.
      this.schedule(lane);
      return;
    }
    if (lane.scheduled || lane.holdTimer !== undefined) return;
    if (lane.batchesOut > 0 && this.limits.maxDelayMs > 0) {
      lane.holdTimer = setTimeout(() => this.flush(lane), this.limits.maxDelayMs);
    } else {
      this.schedule(lane);
    }
  }

  /** A reply to a batch of `lane` came: what is held (and what its callers send next) leaves this turn. */
  replied(lane: Lane): void {
    this.schedule(lane);
  }

  /** Calls to `lane` go one by one for `ms` (a node that does not read batches answered one). */
  unbatch(lane: Lane, ms: number): void {
    lane.unbatchedUntil = Date.now() + ms;
  }

  /** Drops every held call (the client is closing: they are settled by it). */
  clear(): void {
    for (const lane of this.lanes.values()) {
      if (lane.holdTimer !== undefined) clearTimeout(lane.holdTimer);
      lane.holdTimer = undefined;
      lane.held = [];
    }
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.due.length = 0;
  }

  private schedule(lane: Lane): void {
    if (lane.scheduled) return;
    lane.scheduled = true;
    this.due.push(lane);
    this.immediate ??= setImmediate(this.flushDue);
  }

  private readonly flushDue = (): void => {
    this.immediate = undefined;
    const lanes = this.due.splice(0);
    for (const lane of lanes) this.flush(lane);
  };

  /** Sends what `lane` holds: in batches of at most `maxSize` calls and the connection's payload. */
  private flush(lane: Lane): void {
    // A lane flushed early (full) stays in `due`; its turn then finds it empty, which costs nothing.
    lane.scheduled = false;
    if (lane.holdTimer !== undefined) {
      clearTimeout(lane.holdTimer);
      lane.holdTimer = undefined;
    }
    const held = lane.held;
    if (held.length === 0) return;
    lane.held = [];
    const live = held.filter((call) => this.sender.live(call));
    if (Date.now() < lane.unbatchedUntil) {
      for (const call of live) this.sender.one(call);
      return;
    }
    const budget = this.sender.maxBytes();
    for (let from = 0; from < live.length; ) {
      // Room for the descriptor's brackets and line feed; an entry is at most its metadata (whose UTF-16
      // length, ×3, bounds its UTF-8 bytes) and 32 bytes of digits and punctuation.
      let bytes = 3;
      let to = from;
      while (to < live.length && to - from < this.limits.maxSize) {
        const call = live[to] as RemoteCall;
        const size = call.body.byteLength + 3 * (call.metadataJson?.length ?? 0) + 32;
        if (to > from && bytes + size > budget) break;
        bytes += size;
        to++;
      }
      if (to - from === 1) this.sender.one(live[from] as RemoteCall);
      else this.sender.many(lane, live.slice(from, to));
      from = to;
    }
  }

  private sweep(): void {
    for (const [subject, lane] of this.lanes) {
      if (lane.out === 0 && lane.held.length === 0 && !lane.scheduled) this.lanes.delete(subject);
    }
  }
}
