import type { QueryBus } from '@cqrs-pool/core';
import { HANG_MS } from '../control.js';
import { Hold } from '../fixtures/reliabilityMessages.js';

/**
 * Two `Hold` calls at the same time on a two-thread pool; returns the threads they ran on. The first holds its
 * thread until the second has returned, so the second can only run on the other thread, whenever that one is
 * up: two distinct threads by construction, not by timing. A thread that never comes up shows as the same id
 * twice (the first call stops holding after the hang bound).
 */
export async function holdBoth(queries: QueryBus): Promise<[number, number]> {
  const control = new Int32Array(new SharedArrayBuffer(8));
  const first = queries.execute(Hold, { ms: HANG_MS, control });
  let second: { threadId: number };
  try {
    second = await queries.execute(Hold, { ms: 0 });
  } finally {
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
  }
  return [(await first).threadId, second.threadId];
}
