/**
 * The DONE flag is the thread's word that a call's handler finished and its outcome is on its way: an abort
 * that lands after it lets the outcome stand, and a finished call whose thread dies later in its board
 * session waits for its outcome (TaskScheduler's orphans) instead of failing at once. A call's metrics have
 * nothing to do with that, so a thread marks every call it finished — recorded or not (`s: -1`, a bus with
 * metrics off) — and never one it did not run. Forged tasks on the real thread entry (forgedPool.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DONE, FAILED, STARTED } from '../src/shared/CancelFlags.js';
import { fixtureUrl } from './fixtureUrl.js';
import { type ForgedPool, forgedPool, forgedTask } from './forgedPool.js';

const handlers = fixtureUrl('reliabilityHandlers').href;

let pool: ForgedPool | undefined;

afterEach(async () => {
  await pool?.destroy();
  pool = undefined;
});

/** Runs export `x` of the reliability fixtures on `input` and returns its outcome and its slot's flags. */
async function flagsAfter(forged: ForgedPool, x: string, n: string, cancelFirst = false) {
  const { cancel } = forged;
  const slot = cancel.acquire();
  try {
    if (cancelFirst) cancel.cancel(slot, cancel.generation(slot));
    const outcome = await forged.run(forgedTask(cancel, slot, { m: 0, x, n, i: { n: 3 } }));
    return { outcome, flags: cancel.flags(slot) & (STARTED | DONE | FAILED) };
  } finally {
    cancel.release(slot);
  }
}

describe('the DONE flag', () => {
  it('marks an unrecorded call that succeeded DONE, before its outcome reaches the caller', async () => {
    pool = forgedPool();
    expect(pool.modules.register(handlers)).toBe(0);
    const { outcome, flags } = await flagsAfter(pool, 'echo', 'FuzzEcho');
    expect(outcome).toEqual({ ok: true, v: { n: 3 } });
    expect(flags).toBe(STARTED | DONE);
  });

  it('marks an unrecorded call whose handler threw DONE and FAILED', async () => {
    pool = forgedPool();
    pool.modules.register(handlers);
    const { outcome, flags } = await flagsAfter(pool, 'throwInput', 'FuzzThrowInput');
    expect(outcome).toMatchObject({ ok: false, k: 'handler' });
    expect(flags).toBe(STARTED | DONE | FAILED);
  });

  it('does not mark a call cancelled before it started: its handler never ran', async () => {
    pool = forgedPool();
    pool.modules.register(handlers);
    const { outcome, flags } = await flagsAfter(pool, 'echo', 'FuzzEcho', true);
    expect(outcome).toMatchObject({ ok: false, k: 'cancelled' });
    expect(flags & DONE).toBe(0);
  });
});
