/**
 * Isolation: a pool thread imports only modules the main thread registered. Tasks name a module by its index
 * in a shared table that only the main thread writes; here a task is forged and posted straight to the
 * thread entry (piscina on core's built `handlerHost.cjs`, with a module table built in this test), naming
 * indices never registered and values that are not indices at all. Each must be answered with a `load`
 * failure, and the forbidden module — whose import announces itself on a BroadcastChannel — must not be
 * imported, until it is registered (the positive control, on the same thread). Runs against the built
 * package and fixtures (`node build.mjs --fast` first).
 */
import { BroadcastChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskOutcome } from '../../src/pool/protocol.js';
import { fixtureUrl } from '../fixtureUrl.js';
import { type ForgedPool, forgedPool, forgedTask } from '../forgedPool.js';

const allowed = fixtureUrl('reliabilityHandlers').href;
const forbidden = fixtureUrl('reliabilityForbidden').href;
// Named here, not imported from the fixture: importing it would fire the marker.
const markerChannel = 'cqrs-pool:isolation-marker';

let pool: ForgedPool | undefined;
let marker: BroadcastChannel | undefined;

afterEach(async () => {
  marker?.close();
  marker = undefined;
  await pool?.destroy();
  pool = undefined;
});

/** A one-thread pool on the real thread entry, with a module table this test alone writes. */
function isolatedPool() {
  const forged = forgedPool();
  pool = forged;
  const { cancel } = forged;
  const post = async (m: unknown, x: string, n: string): Promise<TaskOutcome> => {
    const slot = cancel.acquire();
    try {
      return await forged.run(forgedTask(cancel, slot, { m, x, n }));
    } finally {
      cancel.release(slot);
    }
  };
  return { modules: forged.modules, post };
}

/** Every thread id that imported the forbidden module, as they announce it. */
function watchImports(): number[] {
  const seen: number[] = [];
  marker = new BroadcastChannel(markerChannel);
  marker.onmessage = (event: unknown) => {
    seen.push((event as { data: { threadId: number } }).data.threadId);
  };
  return seen;
}

function failureMessage(outcome: TaskOutcome): string {
  if (outcome.ok || outcome.e.t !== 'error') return JSON.stringify(outcome);
  return outcome.e.message;
}

describe('isolation', () => {
  it('a forged task naming an unregistered module gets a load failure and imports nothing', async () => {
    const imported = watchImports();
    const { modules, post } = isolatedPool();
    expect(modules.register(allowed)).toBe(0);
    // The thread works, and module #0 (registered) loads.
    const tally = await post(0, 'burn', 'Burn');
    expect(tally.ok).toBe(true);

    const forged: unknown[] = [
      1,
      2,
      99,
      2 ** 31 - 1,
      -1,
      0.5,
      Number.NaN,
      '1',
      'length',
      'constructor',
      '__proto__',
    ];
    for (const m of forged) {
      const outcome = await post(m, 'harmless', 'Harmless');
      expect(outcome, `module ${String(m)}`).toMatchObject({ ok: false, k: 'load' });
      expect(failureMessage(outcome)).toContain('was never registered on the main thread');
    }
    // An export that is not one (prototype keys of a namespace) on the registered module is refused too.
    for (const x of ['__proto__', 'constructor', 'then']) {
      expect(await post(0, x, 'Harmless')).toMatchObject({ ok: false, k: 'load' });
    }
    // Give a stray import every chance to announce itself.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(imported).toEqual([]);

    // Positive control: once the main thread registers it, the same thread imports it, and the marker fires.
    expect(modules.register(forbidden)).toBe(1);
    expect(await post(1, 'harmless', 'Harmless')).toEqual({ ok: true, v: 'loaded' });
    const deadline = performance.now() + 15_000;
    while (imported.length === 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(imported).toHaveLength(1);
  });
});
