import { abortErrorFor } from '../util/abortError.js';
import type { Abortable } from '../util/callAbort.js';
import { abortReason, isAborted, onAbort } from '../util/callAbort.js';

/** What `orderingKey` may return: calls with an equal key (`===`, NaN equal to NaN) are ordered. */
export type OrderingKey = string | number;

const WAITING = 0;
const HOLDING = 1;
const LEFT = 2;
const DONE = 3;

/** Where a {@link KeyOrder} reports waits: the ordering table (bounds, totals) and the handler's metrics. */
export interface KeyOrderSink {
  /** A call starts waiting for its key; false refuses it (the pool's queue is full). */
  startWaiting(): boolean;
  /** A call stopped waiting (its turn came, or it left). */
  stopWaiting(): void;
  /** A call got its key after waiting `waitedMs` (0: at once). */
  granted(waitedMs: number): void;
}

/**
 * One call's place in the lane of its key, taken when the call enters the bus. The call holds the key from
 * its turn until it has settled *and* no handler attempt of it is still running (a worker handler past its
 * caller's timeout runs on in its grace period; the next call of the key must not overlap it).
 * @internal
 */
export class OrderTicket {
  state: number = WAITING;
  /** The ticket that entered next with the same key: the lane is a list from the holder to the last. */
  next: OrderTicket | undefined = undefined;
  /** When it started waiting (performance.now()), for the wait-time metric. */
  waitingSince = 0;
  /** Handler executions of this call in progress (retries run one after another, so 0 or 1). */
  private running = 0;
  private settled = false;
  private wake: (() => void) | undefined = undefined;

  constructor(
    private readonly order: KeyOrder,
    readonly key: OrderingKey,
    readonly sink: KeyOrderSink | undefined,
  ) {}

  /**
   * Resolves when this call may start its handler: undefined when it holds its key already (no promise, no
   * tick), else a promise that resolves at its turn or rejects with the call's abort error (its place is
   * given up when the call settles).
   */
  turn(call: Abortable, name: string): Promise<void> | undefined {
    if (this.state === HOLDING) return undefined;
    if (isAborted(call)) return Promise.reject(abortErrorFor(abortReason(call), name));
    return new Promise<void>((resolve, reject) => {
      const unsubscribe = onAbort(call, () => {
        this.wake = undefined;
        reject(abortErrorFor(abortReason(call), name));
      });
      this.wake = () => {
        unsubscribe();
        resolve();
      };
    });
  }

  /** A handler attempt of this call starts (after its turn). */
  begin(): void {
    this.running++;
  }

  /** A handler attempt ended: its handler has returned, thrown or its thread is gone. */
  end(): void {
    if (--this.running === 0 && this.settled) this.order.leave(this);
  }

  /** The call settled at the bus (its caller has its answer). Idempotent. */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.running === 0) this.order.leave(this);
  }

  get holding(): boolean {
    return this.state === HOLDING;
  }

  /** It is this ticket's turn. @internal, called by its KeyOrder. */
  grant(waited: boolean): void {
    this.state = HOLDING;
    if (!waited) {
      this.sink?.granted(0);
      return;
    }
    this.sink?.stopWaiting();
    this.sink?.granted(performance.now() - this.waitingSince);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * The lanes of one ordering group (a handler's calls, or the handlers that share an `orderingGroup`): per
 * key, at most one call holds the key at a time and the others wait in the order they entered.
 *
 * A lane is a list of tickets from the one holding the key to the last that entered; the map keeps only
 * the last ticket of each key, and only while some call of the key is in flight — a million distinct keys
 * leave nothing behind, and a call whose key is free costs one map lookup and one store on entry and one
 * delete on leaving.
 *
 * Calls take their place when they enter the bus, before any middleware, so the order is the order of
 * `execute`; they wait for their turn at the handler's terminal, after the middleware, so a timeout bounds
 * the wait, a refusal (validation, rate limit, breaker, cache hit) gives the place up at once, and a retry's
 * later attempts keep the place the call holds. Waiting costs no thread: a waiting call is a promise here.
 * @internal
 */
export class KeyOrder {
  /** The last ticket of each key with a call in flight. */
  private readonly tails = new Map<OrderingKey, OrderTicket>();

  /** Keys with a call in flight. */
  get size(): number {
    return this.tails.size;
  }

  /**
   * Takes a place for a call of `key`: the key at once when no call of it is in flight, else a place at the
   * back. Returns undefined when the call must wait and the sink refuses (the pool's queue is full).
   */
  enter(key: OrderingKey, sink: KeyOrderSink | undefined): OrderTicket | undefined {
    const tail = this.tails.get(key);
    const ticket = new OrderTicket(this, key, sink);
    if (tail === undefined) {
      this.tails.set(key, ticket);
      ticket.grant(false);
      return ticket;
    }
    if (sink !== undefined && !sink.startWaiting()) return undefined;
    ticket.waitingSince = performance.now();
    tail.next = ticket;
    this.tails.set(key, ticket);
    return ticket;
  }

  /** `ticket`'s call is done with its key, or gave its place up while it waited. */
  leave(ticket: OrderTicket): void {
    if (ticket.state === WAITING) {
      // Stays linked, skipped when the turn reaches it.
      ticket.state = LEFT;
      ticket.sink?.stopWaiting();
      return;
    }
    if (ticket.state !== HOLDING) return;
    ticket.state = DONE;
    let next = ticket.next;
    ticket.next = undefined;
    while (next !== undefined && next.state === LEFT) {
      const after: OrderTicket | undefined = next.next;
      next.next = undefined;
      next = after;
    }
    if (next !== undefined) next.grant(true);
    // Nobody waits: the lane ends. (Its tail was this ticket or one that left behind it: every later
    // entrant links itself to the tail, so a live one would have been found above.)
    else this.tails.delete(ticket.key);
  }
}
