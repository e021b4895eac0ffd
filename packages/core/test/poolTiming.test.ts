/**
 * What the pool measures about its threads and its queue, on real threads: busy thread-time (counted by the
 * threads in shared memory), the recent busy fraction, and each call's wait for a thread. Asserted from
 * events and from the test's own clock readings around them, never against a speed. Runs against the built
 * package and fixtures (`node build.mjs --fast` first).
 */
import { CommandBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newControl, releaseAll, waitForStarts } from './control.js';
import { Block } from './fixtures/messages.js';
import { SameCommand, Work } from './fixtures/metricsHandlers.js';
import { fixtureUrl } from './fixtureUrl.js';

const metricsHandlers = fixtureUrl('metricsHandlers');
const blockers = fixtureUrl('handlers');

let pool: WorkerPool | undefined;
let controls: Int32Array[] = [];

afterEach(async () => {
  for (const control of controls) releaseAll(control);
  controls = [];
  await pool?.close();
  pool = undefined;
});

function setup(threads: number) {
  const p = new WorkerPool({ threads });
  pool = p;
  const commands = new CommandBus({ pool: p });
  commands.registerHandler(Work, inWorker(metricsHandlers, 'doWork'));
  commands.registerHandler(SameCommand, inWorker(metricsHandlers, 'sameCommand'));
  commands.registerHandler(Block, inWorker(blockers, 'block'));
  /** The queue waits recorded for `name`: how many, and their sum in µs. */
  const queueWait = (name: string) => {
    const slot = commands.metricsSources().handlers.find((h) => h.name === name)?.slot ?? -1;
    const { counts, sumMicros } = p.metrics.readQueueWait(slot);
    return { count: counts.reduce((sum, n) => sum + n, 0), sumMicros };
  };
  const control = (): Int32Array => {
    const c = newControl();
    controls.push(c);
    return c;
  };
  return { pool: p, commands, queueWait, control };
}

describe('WorkerPool busy time and utilization', () => {
  it('counts the busy time of CPU-bound calls, bounded by threads × elapsed time', async () => {
    const createdAt = performance.now();
    const { pool, commands } = setup(2);
    expect(pool.busySeconds).toBe(0);
    const calls = 12;
    const spinUs = 3_000;
    await Promise.all(Array.from({ length: calls }, () => commands.execute(Work, { spinUs, fail: false })));
    const elapsedSeconds = (performance.now() - createdAt) / 1000;
    const busy = pool.busySeconds;
    // Each call spun `spinUs` inside its thread's busy interval.
    expect(busy).toBeGreaterThanOrEqual((calls * spinUs) / 1e6);
    // Two threads cannot be busy for more than twice the time that passed.
    expect(busy).toBeLessThanOrEqual(2 * elapsedSeconds);
    // Idle threads add nothing.
    expect(pool.busySeconds).toBe(busy);
  });

  it('shows a running call as it runs, and its share of capacity in utilization', async () => {
    const createdAt = performance.now();
    const { pool, commands, control } = setup(2);
    const blocked = [control(), control()];
    const calls = blocked.map((c) => commands.execute(Block, { control: c }));
    await Promise.all(blocked.map((c) => waitForStarts(c)));
    const blockedSince = performance.now();
    const a = performance.now();
    const before = pool.busySeconds;
    const b = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const c = performance.now();
    const after = pool.busySeconds;
    const d = performance.now();
    // Both threads busy all along: the total grew by twice the time between the two reads, which lies
    // between c − b and d − a (10 µs: rounding to the µs, and the clocks of two threads).
    const grown = (after - before) * 1e6;
    expect(grown).toBeGreaterThanOrEqual(2 * (c - b) * 1000 - 10);
    expect(grown).toBeLessThanOrEqual(2 * (d - a) * 1000 + 10);
    // Busy since `blockedSince`, out of at most the pool's lifetime.
    const now = performance.now();
    const utilization = pool.utilization;
    expect(utilization).toBeGreaterThanOrEqual((now - blockedSince) / (now - createdAt) - 1e-6);
    expect(utilization).toBeLessThanOrEqual(1);
    for (const c of blocked) releaseAll(c);
    await Promise.all(calls);
  });
});

describe('WorkerPool queue wait', () => {
  it('is the time a call waited for a busy thread, and next to nothing on an idle one', async () => {
    const { commands, queueWait, control } = setup(1);
    // On the idle thread: its wait is part of its call, whatever the machine's speed.
    const c0 = performance.now();
    await commands.execute(SameCommand, { spinUs: 0, fail: false });
    const idleCallMicros = (performance.now() - c0) * 1000;
    const idle = queueWait('Same');
    expect(idle.count).toBe(1);
    expect(idle.sumMicros).toBeLessThanOrEqual(idleCallMicros + 10);

    // The only thread busy: the next call waits in the queue until the blocker is released.
    const blocker = control();
    const blocked = commands.execute(Block, { control: blocker });
    await waitForStarts(blocker);
    const queued = commands.execute(Work, { spinUs: 0, fail: false });
    const queuedBy = performance.now();
    // Keep it waiting longer than the whole idle call took.
    while (performance.now() - queuedBy < 2 * (idleCallMicros / 1000) + 1) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const releasedAt = performance.now();
    releaseAll(blocker);
    await Promise.all([blocked, queued]);
    const waited = queueWait('Work');
    expect(waited.count).toBe(1);
    // It was handed to the pool before `queuedBy` and started after `releasedAt` (10 µs: the clocks of two
    // threads, and rounding).
    expect(waited.sumMicros).toBeGreaterThanOrEqual((releasedAt - queuedBy) * 1000 - 10);
    expect(waited.sumMicros).toBeGreaterThan(idle.sumMicros);
    // The blocker itself found the thread idle.
    expect(queueWait('Block').count).toBe(1);
  });
});
