import type { CqrsError } from '../errors/CqrsError.js';
import { abortErrorFor } from '../util/abortError.js';
import type { Abortable } from '../util/callAbort.js';
import { abortReason, isAborted, onAbort } from '../util/callAbort.js';

/** What `orderingKey` may return: calls with an equal key (`===`, NaN equal to NaN) are ordered. */
export type OrderingKey = string | number;

const WAITING = 0;
const HOLDING = 1;
const LEFT = 2;

/** The calls of one key: the one holding it, then the ones waiting, in the order they entered. */
interface Lane {
  readonly key: OrderingKey;
  holder: OrderTicket | undefined;
  readonly queue: OrderTicket[];
  head: number;
  /** Tickets in `queue` from `head` on that have not left. */
  waiting: number;
}

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
  /** When it started waiting (performance.now()), for the wait-time metric. */
  waitingSince = 0;
  /** Handler executions of this call in progress (retries run one after another, so 0 or 1). */
  private running = 0;
  private settled = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly order: KeyOrder,
    readonly lane: Lane,
    private readonly sink: KeyOrderSink | undefined,
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
        reject(abortErrorFor(abortReason(call), name) satisfies CqrsError);
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

  /** The call settled at the bus (its caller has its answer). */
  settle(): void {
    this.settled = true;
    if (this.running === 0) this.order.leave(this);
  }

  /** It is this ticket's turn: @internal, called by its KeyOrder. */
  grant(waited: boolean): void {
    this.state = HOLDING;
    if (waited) {
      this.sink?.stopWaiting();
      this.sink?.granted(performance.now() - this.waitingSince);
    } else this.sink?.granted(0);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Left while waiting: @internal. */
  drop(): void {
    this.state = LEFT;
    this.sink?.stopWaiting();
  }

  get holding(): boolean {
    return this.state === HOLDING;
  }

  get left(): boolean {
    return this.state === LEFT;
  }
}

/**
 * The lanes of one ordering group (a handler's calls, or the handlers that share an `orderingGroup`): per
 * key, at most one call holds the key at a time and the others wait in the order they entered. A lane exists
 * only while some call of its key is in flight, so a million distinct keys leave nothing behind.
 *
 * Calls take their place when they enter the bus, before any middleware, so the order is the order of
 * `execute`; they wait for their turn at the handler's terminal, after the middleware, so a timeout bounds
 * the wait, a refusal (validation, rate limit, breaker, cache hit) gives the place up at once, and a retry's
 * later attempts keep the place the call holds. Waiting costs no thread: a waiting call is a promise here.
 * @internal
 */
export class KeyOrder {
  private readonly lanes = new Map<OrderingKey, Lane>();

  /** Lanes with a call in flight (for tests and metrics). */
  get size(): number {
    return this.lanes.size;
  }

  /**
   * Takes a place for a call of `key`: the key at once when its lane is idle, else a place at the back.
   * Returns undefined when the call must wait and the sink refuses (the pool's queue is full).
   */
  enter(key: OrderingKey, sink: KeyOrderSink | undefined): OrderTicket | undefined {
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { key, holder: undefined, queue: [], head: 0, waiting: 0 };
      this.lanes.set(key, lane);
    }
    const ticket = new OrderTicket(this, lane, sink);
    if (lane.holder === undefined && lane.waiting === 0) {
      lane.holder = ticket;
      ticket.grant(false);
      return ticket;
    }
    if (sink !== undefined && !sink.startWaiting()) return undefined;
    ticket.waitingSince = performance.now();
    lane.queue.push(ticket);
    lane.waiting++;
    return ticket;
  }

  /** `ticket`'s call is done with its key (or never had it): the next waiting call of the lane gets it. */
  leave(ticket: OrderTicket): void {
    const lane = ticket.lane;
    if (ticket.holding) {
      lane.holder = undefined;
      this.passOn(lane);
    } else if (!ticket.left) {
      ticket.drop();
      lane.waiting--;
      // Its entry stays in the queue, skipped when reached; cleared out once the lane empties.
      if (lane.holder === undefined) this.passOn(lane);
    }
    if (lane.holder === undefined && lane.waiting === 0 && this.lanes.get(lane.key) === lane) {
      this.lanes.delete(lane.key);
    }
  }

  private passOn(lane: Lane): void {
    while (lane.head < lane.queue.length) {
      const next = lane.queue[lane.head] as OrderTicket;
      lane.queue[lane.head++] = undefined as unknown as OrderTicket;
      if (next.left) continue;
      lane.waiting--;
      // Drop the consumed front once it is most of the array: amortised O(1) per call.
      if (lane.head > 64 && lane.head * 2 > lane.queue.length) {
        lane.queue.splice(0, lane.head);
        lane.head = 0;
      }
      lane.holder = next;
      next.grant(true);
      return;
    }
    lane.queue.length = 0;
    lane.head = 0;
  }
}
