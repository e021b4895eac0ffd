/**
 * Past its grace period, a cancelled call still running has its thread terminated (WorkerPool.terminateRunner).
 * The pool first claims the thread on the call's flag (CancelFlags.claim): a handler that ended before the
 * claim keeps its thread (batching.test.ts), and one that ends after it must not let its thread go on to
 * another call, which the termination would take with it. Forged tasks on the real thread entry
 * (forgedPool.ts), so the claim lands exactly while the handler runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBatch } from '../src/pool/batchCodec.js';
import { CANCELLED, STARTED, TERMINATING } from '../src/shared/CancelFlags.js';
import { newControl, waitForStarts } from './control.js';
import { Control } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { type ForgedPool, forgedPool, forgedTask } from './forgedPool.js';

const handlers = fixtureUrl('handlers').href;

let pool: ForgedPool | undefined;

afterEach(async () => {
  await pool?.destroy();
  pool = undefined;
});

describe('the claim on a thread to terminate', () => {
  it('stops a thread whose cancelled call ends after the claim: the call behind it never starts there', async () => {
    pool = forgedPool();
    const { cancel } = pool;
    expect(pool.modules.register(handlers)).toBe(0);
    const control = newControl();
    const cancelled = cancel.acquire();
    const behind = cancel.acquire();
    const batch = encodeBatch([
      {
        ...forgedTask(cancel, cancelled, { m: 0, x: 'awaitSignal', n: 'AwaitSignal', i: { control } }),
        a: 1,
      },
      forgedTask(cancel, behind, { m: 0, x: 'square', n: 'Square', i: { n: 3 } }),
    ]);
    const answer = pool.runBatch(batch);
    await waitForStarts(control);
    const gen = cancel.generation(cancelled);
    // What the pool does past the grace period, in this order: the claim comes before the handler sees the
    // cancellation (the cancel's notify reaches the thread only once this test yields).
    cancel.cancel(cancelled, gen);
    expect(cancel.claim(cancelled, gen)).toBe(true);
    // The thread leaves instead of answering: piscina reports its exit.
    await expect(answer).rejects.toThrow(/exited/);
    expect(Atomics.load(control, Control.sawCancel)).toBe(1);
    expect(cancel.flags(cancelled)).toBe(STARTED | CANCELLED | TERMINATING);
    expect(cancel.flags(behind) & STARTED).toBe(0);
  });
});
