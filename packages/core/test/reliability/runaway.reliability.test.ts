/**
 * Runaway worker handlers: a synchronous `for (;;)` that never looks at cancellation, under
 * `timeout(ms, { graceMs })`. The caller gets TIMEOUT (never before ms) while the runaway still holds its
 * thread, the thread is terminated after the grace period (never before) and replaced, and the other thread
 * serves calls meanwhile. Checked by the order of events, not by how fast the machine is. Runs against the
 * built package and fixtures (`node build.mjs --fast` first).
 */
import { CommandBus, inWorker, QueryBus, timeout, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, waitUntil } from '../control.js';
import { Hold, Runaway } from '../fixtures/reliabilityMessages.js';
import { fixtureUrl } from '../fixtureUrl.js';
import { rejectionWith } from '../rejectionWith.js';
import { holdBoth } from './holdBoth.js';

const handlers = fixtureUrl('reliabilityHandlers');
const ms = 150;
const graceMs = 200;
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** The runaway's control: [0] its thread id, [1] runaway handlers started. */
function control(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8));
}

/**
 * Blocks the main thread (Atomics.wait) until `word` of `array` reaches `count`. While it blocks no timer of
 * this thread fires — not the timeout's deadline, not the grace period that ends a runaway — so what a
 * thread did meanwhile happened before them, however slow the machine. For work already posted to a thread.
 */
function blockUntil(array: Int32Array, word: number, count: number, what: string): void {
  const deadline = performance.now() + HANG_MS;
  for (let seen = Atomics.load(array, word); seen < count; seen = Atomics.load(array, word)) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`timed out after ${HANG_MS} ms blocking for ${what}`);
    Atomics.wait(array, word, seen, left);
  }
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
  it('gives TIMEOUT while it still spins, its thread is replaced after the grace, the other thread serves meanwhile', async () => {
    const { pool: p, commands, queries } = setup();
    await Promise.all([commands.ready(), queries.ready()]);
    // Both threads up and idle, so each call below is posted at once.
    await holdBoth(queries);
    const timings: { timeoutMs: number; replacedMs: number }[] = [];
    for (let trial = 0; trial < 3; trial++) {
      const c = control();
      const started = performance.now();
      let timedOutAt = 0;
      let servedSettled = false;
      // What the pool had in flight at the TIMEOUT besides the call served below (its answer may come later).
      let othersInFlightAtTimeout = -1;
      const timedOut = rejectionWith(
        commands.execute(Runaway, { control: c }).catch((err: unknown) => {
          timedOutAt = performance.now();
          othersInFlightAtTimeout = p.inFlight - (servedSettled ? 0 : 1);
          throw err;
        }),
        'TIMEOUT',
      );
      // The runaway starts before its deadline can fall due (no timer fires while this blocks).
      blockUntil(c, 1, 1, 'the runaway handler to start');
      const spinning = Atomics.load(c, 0);
      // Meanwhile the other thread serves a call to its end. Blocking until it has run there keeps the deadline
      // and the grace period from firing: the runaway spins throughout.
      const served = new Int32Array(new SharedArrayBuffer(8));
      Atomics.store(served, 0, 1);
      const call = queries.execute(Hold, { ms: 0, control: served }).finally(() => {
        servedSettled = true;
      });
      blockUntil(served, 1, 1, 'a call on the other thread');
      expect((await call).threadId).not.toBe(spinning);
      await timedOut;
      // Never before ms; and while the runaway was still in flight on its thread (its grace period starts at
      // the TIMEOUT): the caller did not wait for it.
      expect(timedOutAt - started).toBeGreaterThanOrEqual(ms - 2);
      expect(othersInFlightAtTimeout).toBe(1);
      await waitUntil(
        () => p.inFlight === 0 && p.threads === 2,
        HANG_MS,
        'the runaway thread to be terminated and replaced',
      );
      const replacedMs = performance.now() - started;
      // Terminated only once the grace period after the TIMEOUT was over.
      expect(replacedMs).toBeGreaterThanOrEqual(ms + graceMs - 2);
      // Both threads serve again, and neither is the terminated one.
      const pair = await holdBoth(queries);
      expect(new Set(pair).size).toBe(2);
      expect(pair).not.toContain(spinning);
      timings.push({ timeoutMs: Math.round(timedOutAt - started), replacedMs: Math.round(replacedMs) });
    }
    expect(commands.getMetrics().handlers.Runaway).toMatchObject({ executions: 3, failures: 3, inFlight: 0 });
    console.log(`runaway (ms ${ms}, grace ${graceMs}): ${JSON.stringify(timings)}`);
  }, 60_000);

  it('on both threads at once: both time out while they spin, both threads are replaced, then calls succeed', async () => {
    const { pool: p, commands, queries } = setup();
    await Promise.all([commands.ready(), queries.ready()]);
    await holdBoth(queries);
    const c = control();
    let queuedSettled = false;
    const atTimeouts: { inFlight: number; queuedSettled: boolean }[] = [];
    const both = [0, 1].map(() =>
      commands.execute(Runaway, { control: c }).catch((err: unknown) => {
        atTimeouts.push({ inFlight: p.inFlight, queuedSettled });
        throw err;
      }),
    );
    // Queued behind them: waits for a replacement thread, then completes.
    const queued = queries.execute(Hold, { ms: 0 }).finally(() => {
      queuedSettled = true;
    });
    // Both start before their deadlines can fall due (no timer fires while this blocks).
    blockUntil(c, 1, 2, 'both runaway handlers to start');
    for (const call of both) await rejectionWith(call, 'TIMEOUT');
    // Each TIMEOUT came while both runaways still held their threads and the queued call still waited: a
    // grace period only starts at its TIMEOUT, and the two deadlines fall due before either grace ends.
    expect(atTimeouts).toEqual([
      { inFlight: 3, queuedSettled: false },
      { inFlight: 3, queuedSettled: false },
    ]);
    await expect(queued).resolves.toMatchObject({ threadId: expect.any(Number) });
    await waitUntil(
      () => p.inFlight === 0 && p.threads === 2,
      HANG_MS,
      'both runaway threads to be replaced',
    );
    expect(commands.getMetrics().handlers.Runaway).toMatchObject({ executions: 2, failures: 2, inFlight: 0 });
    expect(queries.getMetrics().handlers.Hold).toMatchObject({ executions: 3, failures: 0, inFlight: 0 });
  });
});
