import { CqrsError } from '../errors/CqrsError.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import type { KeyOrderSink, OrderTicket } from './KeyOrder.js';
import { KeyOrder } from './KeyOrder.js';
import type { OrderingTable } from './OrderingTable.js';

/** Per-key order of one registration: its key function, the lanes its calls wait in, where waits are told. @internal */
export interface Ordering {
  readonly keyOf: (input: unknown, metadata: Metadata) => unknown;
  readonly order: KeyOrder;
  readonly sink: KeyOrderSink;
}

/**
 * The ordering of a handler (or subscriber) registered with `orderingKey`: its own key space, or the lanes
 * of `group` in `table` (shared by every bus of a pool), with waits counted against the pool's queue bound
 * and in the handler's metrics slot. @internal
 */
export function keyOrdering(
  table: OrderingTable,
  keyOf: Ordering['keyOf'],
  group: string | undefined,
  region: MetricsRegion | undefined,
  slot: number,
): Ordering {
  // A handler's own key space is a group nobody else can name.
  const order = group === undefined ? new KeyOrder() : table.group(group);
  const sink: KeyOrderSink = {
    startWaiting: () => {
      if (!table.startWaiting()) return false;
      if (slot >= 0) region?.addKeyWaiting(slot, 1);
      return true;
    },
    stopWaiting: () => {
      table.stopWaiting();
      if (slot >= 0) region?.addKeyWaiting(slot, -1);
    },
    granted: (waitedMs) => {
      if (slot >= 0) region?.recordKeyWait(slot, waitedMs * 1000);
    },
  };
  return { keyOf, order, sink };
}

/**
 * The place of a keyed call of handler `name` in its lane: its ticket, undefined for a call without a key,
 * or the error that refuses it (a key function that throws or returns something else than a string or a
 * number; no room to wait in the pool's queue). @internal
 */
export function placeCall(
  ordering: Ordering,
  name: string,
  input: unknown,
  metadata: Metadata,
): OrderTicket | CqrsError | undefined {
  const key = callKey(ordering, name, input, metadata);
  if (key === undefined || key instanceof CqrsError) return key;
  const ticket = ordering.order.enter(key, ordering.sink);
  if (ticket !== undefined) return ticket;
  return new CqrsError('OVERLOADED', `${name}: the pool's queue is full (calls waiting for their key)`, {
    handler: name,
  });
}

/**
 * The key of a call of handler `name`: what its `orderingKey` returns, or the `VALIDATION` error for a
 * function that throws or returns something else than a string, a number or undefined. @internal
 */
export function callKey(
  ordering: Ordering,
  name: string,
  input: unknown,
  metadata: Metadata,
): string | number | CqrsError | undefined {
  let key: unknown;
  try {
    key = ordering.keyOf(input, metadata);
  } catch (err) {
    return new CqrsError('VALIDATION', `${name}: orderingKey threw: ${errorText(err)}`, {
      cause: err,
      handler: name,
    });
  }
  if (key === undefined || typeof key === 'string' || typeof key === 'number') return key;
  return new CqrsError(
    'VALIDATION',
    `${name}: orderingKey must return a string, a number or undefined, got ${typeof key}`,
    { handler: name },
  );
}

function errorText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'an unreadable error';
  }
}
