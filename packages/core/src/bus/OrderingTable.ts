import { KeyOrder } from './KeyOrder.js';

/**
 * The ordering groups of the buses on one pool (or of one bus without a pool), and how many calls wait for
 * their key across all of them: those count against the pool's `maxQueue`, as calls waiting for a thread do.
 * @internal
 */
export class OrderingTable {
  private readonly groups = new Map<string, KeyOrder>();
  /** Calls waiting for their key, over every group. */
  waiting = 0;

  /** @param room how many more calls may wait (the pool's `maxQueue` minus what already waits there). */
  constructor(private readonly room: () => number = () => Number.POSITIVE_INFINITY) {}

  /** The lanes of `group`, shared by every handler registered with that `orderingGroup`. */
  group(name: string): KeyOrder {
    let order = this.groups.get(name);
    if (order === undefined) {
      order = new KeyOrder();
      this.groups.set(name, order);
    }
    return order;
  }

  /** A call would wait for its key: counted, unless the queue bound leaves no room (then refused). */
  startWaiting(): boolean {
    if (this.room() <= 0) return false;
    this.waiting++;
    return true;
  }

  stopWaiting(): void {
    this.waiting--;
  }
}
