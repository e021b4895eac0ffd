/**
 * circuitBreaker and rateLimit on real threads: the breaker's state is shared by every thread and bus of a
 * pool, refused calls never reach a thread, half-open admits exactly `halfOpenProbes` calls however many
 * callers race for them, and the limiter admits `burst + rate × elapsed` under concurrent load. Runs against
 * the built package and fixtures (`node build.mjs --fast` first).
 */

import type { CqrsError } from '@cqrs-pool/core';
import {
  type CircuitStateChange,
  CommandBus,
  circuitBreaker,
  inWorker,
  isCqrsError,
  rateLimit,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
// The middleware from source until index.ts exports them; they meet the built buses through the
// Middleware/ChainContext shapes and the region's buffer, as they will from the package.
import { waitUntil } from './control.js';
import { figures } from './figures.js';
import { Flaky, Noop, Reached } from './fixtures/breakerHandlers.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';
import { settleAll } from './settleAll.js';

const handlers = fixtureUrl('breakerHandlers');

let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function newPool(options: ConstructorParameters<typeof WorkerPool>[0]): WorkerPool {
  const p = new WorkerPool(options);
  pool = p;
  return p;
}

function newControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Reached.length * 4));
}

function codesOf(outcomes: PromiseSettledResult<unknown>[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const o of outcomes) {
    const code = o.status === 'fulfilled' ? 'ok' : isCqrsError(o.reason) ? o.reason.code : 'other';
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('circuitBreaker on worker threads', () => {
  it('opens after failureThreshold failures across threads; refusals reach no thread and are counted', async () => {
    const p = newPool({ threads: 2 });
    const changes: CircuitStateChange[] = [];
    const bus = new CommandBus({
      pool: p,
      middleware: [
        circuitBreaker({ failureThreshold: 5, resetAfterMs: 10_000, onStateChange: (c) => changes.push(c) }),
      ],
    });
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    await bus.ready();
    const control = newControl();
    // 12 concurrent failures, run by both threads: all admitted while closed, the 5th to finish opens.
    const failing = await settleAll(
      Array.from({ length: 12 }, () => bus.execute(Flaky, { control, fail: true, spinMs: 2 })),
    );
    expect(codesOf(failing)).toEqual({ HANDLER_FAILED: 12 });
    expect(Atomics.load(control, Reached.calls)).toBe(12);
    expect(Atomics.load(control, Reached.threads).toString(2).replace(/0/g, '')).toHaveLength(2);
    expect(changes.map((c) => `${c.handler}:${c.from}→${c.to}`)).toEqual(['Flaky:closed→open']);
    expect(figures(bus, 'Flaky').circuit).toBe('open');

    const refused = await settleAll(
      Array.from({ length: 50 }, () => bus.execute(Flaky, { control, fail: false, spinMs: 0 })),
    );
    expect(codesOf(refused)).toEqual({ CIRCUIT_OPEN: 50 });
    const first = (refused[0] as PromiseRejectedResult).reason as CqrsError;
    expect(first.handler).toBe('Flaky');
    expect(first.retryAfterMs).toBeGreaterThan(9_000);
    expect(first.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(Atomics.load(control, Reached.calls)).toBe(12);
    expect(figures(bus, 'Flaky')).toMatchObject({
      executions: 62,
      failures: 62,
      inFlight: 0,
      circuit: 'open',
    });
  });

  it('is one breaker for the handler on every bus of the pool', async () => {
    const p = newPool({ threads: 2 });
    const options = { failureThreshold: 2, resetAfterMs: 10_000 };
    const one = new CommandBus({ pool: p, middleware: [circuitBreaker(options)] });
    const two = new CommandBus({ pool: p, middleware: [circuitBreaker(options)] });
    one.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    two.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    const control = newControl();
    await rejectionWith(one.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    await rejectionWith(two.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    await rejectionWith(one.execute(Flaky, { control, fail: false, spinMs: 0 }), 'CIRCUIT_OPEN');
    await rejectionWith(two.execute(Flaky, { control, fail: false, spinMs: 0 }), 'CIRCUIT_OPEN');
    expect(Atomics.load(control, Reached.calls)).toBe(2);
  });

  it('after resetAfterMs lets exactly halfOpenProbes probes through among many callers, and closes on their success', async () => {
    const p = newPool({ threads: 2 });
    const changes: string[] = [];
    const bus = new CommandBus({
      pool: p,
      middleware: [
        circuitBreaker({
          failureThreshold: 1,
          resetAfterMs: 200,
          halfOpenProbes: 3,
          onStateChange: (c) => changes.push(`${c.from}→${c.to}`),
        }),
      ],
    });
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    await bus.ready();
    const control = newControl();
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    const openedAt = performance.now();
    expect(figures(bus, 'Flaky').circuit).toBe('open');
    await waitUntil(
      () => figures(bus, 'Flaky').circuit === 'half-open',
      2_000,
      'the snapshot to say half-open',
    );
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(190);
    expect(changes).toEqual(['closed→open']); // no call has moved it yet: the snapshot read the time

    // Waves of callers while the probes run (each probe holds a thread for 150 ms, well past the last wave).
    const calls: Promise<unknown>[] = [];
    for (let wave = 0; wave < 5; wave++) {
      for (let i = 0; i < 60; i++) calls.push(bus.execute(Flaky, { control, fail: false, spinMs: 150 }));
      await sleep(5);
    }
    const outcomes = await settleAll(calls);
    expect(codesOf(outcomes)).toEqual({ ok: 3, CIRCUIT_OPEN: 297 });
    expect(Atomics.load(control, Reached.calls)).toBe(1 + 3);
    expect(changes).toEqual(['closed→open', 'open→half-open', 'half-open→closed']);
    expect(figures(bus, 'Flaky').circuit).toBe('closed');
    await expect(bus.execute(Flaky, { control, fail: false, spinMs: 0 })).resolves.toBeTypeOf('number');
    expect(figures(bus, 'Flaky')).toMatchObject({ executions: 302, failures: 298, inFlight: 0 });
  });

  it('reopens when a probe fails', async () => {
    const p = newPool({ threads: 2 });
    const bus = new CommandBus({
      pool: p,
      middleware: [circuitBreaker({ failureThreshold: 1, resetAfterMs: 100 })],
    });
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    const control = newControl();
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    await sleep(120);
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    const err = await rejectionWith(bus.execute(Flaky, { control, fail: false, spinMs: 0 }), 'CIRCUIT_OPEN');
    expect(err.retryAfterMs).toBeGreaterThan(50);
    expect(figures(bus, 'Flaky').circuit).toBe('open');
  });

  it('does not count a call its caller aborted, and gives its probe place back', async () => {
    const p = newPool({ threads: 2 });
    const bus = new CommandBus({
      pool: p,
      middleware: [circuitBreaker({ failureThreshold: 1, resetAfterMs: 100, halfOpenProbes: 1 })],
    });
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    const control = newControl();
    const aborted = AbortSignal.abort();
    for (let i = 0; i < 3; i++)
      await rejectionWith(
        bus.execute(Flaky, { control, fail: true, spinMs: 0 }, { signal: aborted }),
        'ABORTED',
      );
    expect(figures(bus, 'Flaky').circuit).toBe('closed');
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    await sleep(120);
    await rejectionWith(
      bus.execute(Flaky, { control, fail: false, spinMs: 0 }, { signal: aborted }),
      'ABORTED',
    );
    await expect(bus.execute(Flaky, { control, fail: false, spinMs: 0 })).resolves.toBeTypeOf('number');
    expect(figures(bus, 'Flaky').circuit).toBe('closed');
  });
});

describe('rateLimit on worker threads', () => {
  it('admits burst + rate × elapsed (±1) of many concurrent calls', async () => {
    const p = newPool({ threads: 2 });
    const limit = 100;
    const windowMs = 1000;
    const burst = 20;
    const bus = new CommandBus({ pool: p, middleware: [rateLimit({ limit, windowMs, burst })] });
    bus.registerHandler(Noop, inWorker(handlers, 'noop'));
    await bus.ready();
    const calls: Promise<unknown>[] = [];
    const started = performance.timeOrigin + performance.now();
    let ended: number;
    for (;;) {
      for (let i = 0; i < 25; i++) calls.push(bus.execute(Noop, {}));
      // Timed right after the last batch is admitted or refused, not after the pause that follows it.
      ended = performance.timeOrigin + performance.now();
      if (ended - started >= 500) break;
      await sleep(2);
    }
    const outcomes = await settleAll(calls);
    const codes = codesOf(outcomes);
    const expected = burst + Math.floor((ended - started) / (windowMs / limit));
    expect(Math.abs((codes.ok ?? 0) - expected)).toBeLessThanOrEqual(1);
    expect((codes.ok ?? 0) + (codes.RATE_LIMITED ?? 0)).toBe(calls.length);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'RATE_LIMITED', handler: 'Noop' });
    expect(refused.reason.retryAfterMs).toBeGreaterThanOrEqual(1);
    expect(refused.reason.retryAfterMs).toBeLessThanOrEqual(10);
    expect(figures(bus, 'Noop')).toMatchObject({ executions: calls.length, failures: codes.RATE_LIMITED });
  });

  it("shares one budget between a bus's handlers with key: 'bus'", async () => {
    const p = newPool({ threads: 2 });
    const bus = new CommandBus({
      pool: p,
      middleware: [rateLimit({ limit: 1, windowMs: 60_000, burst: 10, key: 'bus' })],
    });
    bus.registerHandler(Noop, inWorker(handlers, 'noop'));
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    const control = newControl();
    const outcomes = await settleAll([
      ...Array.from({ length: 6 }, () => bus.execute(Noop, {})),
      ...Array.from({ length: 6 }, () => bus.execute(Flaky, { control, fail: false, spinMs: 0 })),
    ]);
    expect(codesOf(outcomes)).toEqual({ ok: 10, RATE_LIMITED: 2 });
    expect(Atomics.load(control, Reached.calls)).toBe(4);
  });
});
