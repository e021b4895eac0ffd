/**
 * Runaway worker handlers: a synchronous `for (;;)` that never looks at cancellation, under
 * `timeout(ms, { graceMs })`. The caller gets TIMEOUT at ≈ ms, the thread is terminated and replaced by
 * ms + grace + a margin, and calls on the other thread complete meanwhile. Runs against the built package
 * and fixtures (`node build.mjs --fast` first).
 */
import { CommandBus, inWorker, QueryBus, timeout, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../control.js';
import { Hold, Runaway } from '../fixtures/reliabilityMessages.js';
import { fixtureUrl } from '../fixtureUrl.js';
import { rejectionWith } from '../rejectionWith.js';

const handlers = fixtureUrl('reliabilityHandlers');
const ms = 150;
const graceMs = 200;
// Thread termination is asynchronous (the isolate is torn down, piscina then starts a replacement).
const replaceMarginMs = 600;
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function control(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8));
}

function setup() {
  const p = new WorkerPool({ threads: 2 });
  pool = p;
  const commands = new CommandBus({ pool: p });
  const queries = new QueryBus({ pool: p });
  commands.registerHandler(Runaway, inWorker(handlers, 'runaway'), {
    middleware: [timeout(ms, { graceMs })],
  });
  queries.registerHandler(Hold, inWorker(handlers, 'hold'));
  return { pool: p, commands, queries };
}

describe('a runaway worker handler under timeout(ms, { graceMs })', () => {
  it('gives TIMEOUT at ≈ ms, its thread is replaced by ms + grace + margin, the other thread serves meanwhile', async () => {
    const { pool: p, commands, queries } = setup();
    await Promise.all([commands.ready(), queries.ready()]);
    const timings: { timeoutMs: number; replacedMs: number }[] = [];
    for (let trial = 0; trial < 3; trial++) {
      const c = control();
      const started = performance.now();
      const timedOut = rejectionWith(commands.execute(Runaway, { control: c }), 'TIMEOUT', 5_000).then(
        () => performance.now() - started,
      );
      await waitUntil(() => Atomics.load(c, 1) === 1, 2_000, 'the runaway handler to start');
      const spinning = Atomics.load(c, 0);
      // Meanwhile the other thread serves a stream of short calls, none on the spinning thread.
      const served: number[] = [];
      while (performance.now() - started < ms + graceMs) {
        const { threadId } = await queries.execute(Hold, { ms: 10 });
        served.push(threadId);
      }
      expect(served.length).toBeGreaterThan(5);
      expect(served).not.toContain(spinning);
      const timeoutMs = await timedOut;
      expect(timeoutMs).toBeGreaterThanOrEqual(ms - 2);
      expect(timeoutMs).toBeLessThan(ms + 100);
      await waitUntil(
        () => p.inFlight === 0 && p.threads === 2,
        ms + graceMs + replaceMarginMs - (performance.now() - started),
        'the runaway thread to be terminated and replaced',
      );
      const replacedMs = performance.now() - started;
      // Both threads serve again, and neither is the terminated one.
      const pair = await Promise.all([queries.execute(Hold, { ms: 30 }), queries.execute(Hold, { ms: 30 })]);
      expect(new Set(pair.map((r) => r.threadId)).size).toBe(2);
      expect(pair.map((r) => r.threadId)).not.toContain(spinning);
      timings.push({ timeoutMs: Math.round(timeoutMs), replacedMs: Math.round(replacedMs) });
    }
    expect(commands.getMetrics().handlers.Runaway).toMatchObject({ executions: 3, failures: 3, inFlight: 0 });
    console.log(`runaway (ms ${ms}, grace ${graceMs}): ${JSON.stringify(timings)}`);
  });

  it('on both threads at once: both time out, both threads are replaced, then calls succeed', async () => {
    const { pool: p, commands, queries } = setup();
    await commands.ready();
    const c = control();
    const started = performance.now();
    const both = [commands.execute(Runaway, { control: c }), commands.execute(Runaway, { control: c })];
    // Queued behind them: waits for a replacement thread, then completes.
    const queued = queries.execute(Hold, { ms: 0 });
    for (const call of both) await rejectionWith(call, 'TIMEOUT', 5_000);
    expect(performance.now() - started).toBeLessThan(ms + 100);
    await expect(queued).resolves.toMatchObject({ threadId: expect.any(Number) });
    await waitUntil(
      () => p.inFlight === 0 && p.threads === 2,
      ms + graceMs + replaceMarginMs - (performance.now() - started),
      'both runaway threads to be replaced',
    );
    expect(commands.getMetrics().handlers.Runaway).toMatchObject({ executions: 2, failures: 2, inFlight: 0 });
    expect(queries.getMetrics()).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });
});
