/**
 * The pool's series and the per-call timings on real threads: busy thread-seconds, what callers waited and
 * the queue wait. Asserted from events and from the test's own clock readings around them, never against a
 * speed. Runs against the built packages and fixtures (`node build.mjs --fast` first).
 */
import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Hold, HoldControl, Lookup, Work } from './fixtures/handlers.js';
import { parseExposition } from './scrape.js';

const handlers = new URL('../../../dist/packages/prometheus/test/fixtures/handlers.js', import.meta.url);

let pool: WorkerPool | undefined;
const holds: Int32Array[] = [];

afterEach(async () => {
  for (const control of holds.splice(0)) release(control);
  await pool?.close();
  pool = undefined;
});

function release(control: Int32Array): void {
  Atomics.store(control, HoldControl.release, 1);
  Atomics.notify(control, HoldControl.release);
}

function setup(threads: number) {
  const p = new WorkerPool({ threads });
  pool = p;
  const commands = new CommandBus({ pool: p });
  const queries = new QueryBus({ pool: p });
  commands.registerHandler(Work, inWorker(handlers, 'doWork'));
  commands.registerHandler(Hold, inWorker(handlers, 'hold'));
  queries.registerHandler(Lookup, inWorker(handlers, 'lookup'));
  const registry = new Registry();
  registerCqrsMetrics({ registry, buses: [commands, queries], pool: p });
  const scrape = async () => parseExposition(await registry.metrics());
  /** Starts a Hold call and resolves, with its control and its promise, once it runs in a thread. */
  const holdThread = async () => {
    const control = new Int32Array(new SharedArrayBuffer(HoldControl.length * 4));
    holds.push(control);
    const call = commands.execute(Hold, { control });
    while (Atomics.load(control, HoldControl.started) === 0) {
      await Atomics.waitAsync(control, HoldControl.started, 0, 5_000).value;
    }
    return { control, call };
  };
  return { commands, queries, scrape, holdThread };
}

const work = { handler: 'Work', kind: 'command' };
const lookup = { handler: 'Lookup', kind: 'query' };

describe('cqrs_pool_busy_seconds_total', () => {
  it('grows with CPU-bound handlers and stays within threads × wall time', async () => {
    const startedAt = performance.now();
    const { commands, scrape } = setup(2);
    expect((await scrape()).value('cqrs_pool_busy_seconds_total')).toBe(0);
    const calls = 10;
    const spinUs = 4_000;
    await Promise.all(Array.from({ length: calls }, () => commands.execute(Work, { spinUs, fail: false })));
    const m = await scrape();
    const elapsed = (performance.now() - startedAt) / 1000;
    const busy = m.value('cqrs_pool_busy_seconds_total');
    expect(busy).toBeGreaterThanOrEqual((calls * spinUs) / 1e6);
    expect(busy).toBeLessThanOrEqual(m.value('cqrs_pool_threads') * elapsed);
    // Nothing runs any more: the counter stands still.
    expect((await scrape()).value('cqrs_pool_busy_seconds_total')).toBe(busy);
  });
});

describe('cqrs_queue_wait_seconds and cqrs_call_duration_seconds', () => {
  it('show the wait of a call queued behind a busy thread, and next to none for one that found it idle', async () => {
    const { commands, queries, scrape, holdThread } = setup(1);
    const t0 = performance.now();
    await queries.execute(Lookup, { spinUs: 0, fail: false });
    const idleCall = (performance.now() - t0) / 1000;

    const held = await holdThread();
    const queued = commands.execute(Work, { spinUs: 0, fail: false });
    const queuedBy = performance.now();
    expect((await scrape()).value('cqrs_pool_queue_size')).toBe(1);
    // Keep it waiting longer than the whole idle call took.
    while ((performance.now() - queuedBy) / 1000 < 2 * idleCall + 0.001) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const releasedAt = performance.now();
    release(held.control);
    await Promise.all([queued, held.call]);

    const m = await scrape();
    const waited = m.value('cqrs_queue_wait_seconds_sum', work);
    expect(m.value('cqrs_queue_wait_seconds_count', work)).toBe(1);
    // Handed to the pool before `queuedBy`, started after `releasedAt` (10 µs: two threads' clocks, rounding).
    expect(waited).toBeGreaterThanOrEqual((releasedAt - queuedBy) / 1000 - 10e-6);
    // The idle call's wait is part of its own short call.
    const idleWait = m.value('cqrs_queue_wait_seconds_sum', lookup);
    expect(m.value('cqrs_queue_wait_seconds_count', lookup)).toBe(1);
    expect(idleWait).toBeLessThanOrEqual(idleCall + 10e-6);
    expect(idleWait).toBeLessThan(waited);
    // Its caller waited for all of it, and for the run of the handler after it.
    expect(m.value('cqrs_call_duration_seconds_sum', work)).toBeGreaterThanOrEqual(waited - 10e-6);
    expect(m.value('cqrs_call_duration_seconds_count', work)).toBe(1);
    // In the histogram: below `releasedAt − queuedBy` there is nothing of the queued call.
    const buckets = m.all('cqrs_queue_wait_seconds_bucket', work);
    const below = buckets.filter((b) => Number(b.labels.le) < (releasedAt - queuedBy) / 1000 - 10e-6);
    expect(below.every((b) => b.value === 0)).toBe(true);
  });
});
