/**
 * circuitBreaker and rateLimit on real threads: the breaker's state is shared by every thread and bus of a
 * pool, refused calls never reach a thread, half-open admits exactly `halfOpenProbes` calls however many
 * callers race for them, and the limiter admits `burst + rate × elapsed` under concurrent load. Time goes by
 * the breaker's and the limiter's own clocks where a count depends on it (an injected clock the test moves),
 * so no count depends on how fast the machine runs. Runs against the built package and fixtures
 * (`node build.mjs --fast` first).
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
import { allThreadsUp, HANG_MS, waitUntil } from './control.js';
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
    await allThreadsUp(p, 2);
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
    const refusedBy = performance.timeOrigin + performance.now();
    expect(codesOf(refused)).toEqual({ CIRCUIT_OPEN: 50 });
    const first = (refused[0] as PromiseRejectedResult).reason as CqrsError;
    expect(first.handler).toBe('Flaky');
    // What is left of the 10 s, by the wall clock the breaker keeps, however long the calls above took.
    const openedAt = (changes[0] as CircuitStateChange).at;
    expect(first.retryAfterMs).toBeGreaterThanOrEqual(Math.floor(openedAt + 10_000 - refusedBy));
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
      HANG_MS,
      'the snapshot to say half-open',
    );
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(190);
    expect(changes).toEqual(['closed→open']); // no call has moved it yet: the snapshot read the time

    // Waves of callers while the probes run: each probe holds its thread until the last wave is in.
    const calls: Promise<unknown>[] = [];
    for (let wave = 0; wave < 5; wave++) {
      for (let i = 0; i < 60; i++)
        calls.push(bus.execute(Flaky, { control, fail: false, spinMs: 0, hold: true }));
      await sleep(5);
    }
    Atomics.store(control, Reached.release, 1);
    Atomics.notify(control, Reached.release);
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
    // The breaker's clock is the test's: 100 ms pass when the test says so, however slow the calls are.
    let now = 1_000_000;
    const bus = new CommandBus({
      pool: p,
      middleware: [circuitBreaker({ failureThreshold: 1, resetAfterMs: 100, clock: () => now })],
    });
    bus.registerHandler(Flaky, inWorker(handlers, 'flaky'));
    const control = newControl();
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    await rejectionWith(bus.execute(Flaky, { control, fail: false, spinMs: 0 }), 'CIRCUIT_OPEN');
    now += 100;
    // The probe fails: open again, for a full resetAfterMs from now.
    await rejectionWith(bus.execute(Flaky, { control, fail: true, spinMs: 0 }), 'HANDLER_FAILED');
    now += 40;
    const err = await rejectionWith(bus.execute(Flaky, { control, fail: false, spinMs: 0 }), 'CIRCUIT_OPEN');
    expect(err.retryAfterMs).toBe(60);
    expect(figures(bus, 'Flaky').circuit).toBe('open');
    expect(Atomics.load(control, Reached.calls)).toBe(2);
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
  it('admits exactly burst + rate × elapsed of many concurrent calls, and tells the refused when to retry', async () => {
    const p = newPool({ threads: 2 });
    const limit = 100;
    const windowMs = 1000;
    const burst = 20;
    const intervalMs = windowMs / limit;
    // The limiter's clock is the test's: 2 ms pass between two batches of callers, however long the machine
    // takes to serve them, so the count depends on nothing but the limiter.
    let now = 1_000_000;
    const bus = new CommandBus({
      pool: p,
      middleware: [rateLimit({ limit, windowMs, burst, clock: () => now })],
    });
    bus.registerHandler(Noop, inWorker(handlers, 'noop'));
    await bus.ready();
    const calls: Promise<unknown>[] = [];
    const started = now;
    for (let batch = 0; batch < 250; batch++) {
      if (batch > 0) now += 2;
      for (let i = 0; i < 25; i++) calls.push(bus.execute(Noop, {}));
      // Admitted calls run on the threads while the next batches come in.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outcomes = await settleAll(calls);
    const codes = codesOf(outcomes);
    // Every interval of the run freed one place, and each batch found the places freed since the last one.
    expect(codes.ok).toBe(burst + Math.floor((now - started) / intervalMs));
    expect((codes.ok ?? 0) + (codes.RATE_LIMITED ?? 0)).toBe(calls.length);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'RATE_LIMITED', handler: 'Noop' });
    expect(refused.reason.retryAfterMs).toBeGreaterThanOrEqual(1);
    expect(refused.reason.retryAfterMs).toBeLessThanOrEqual(intervalMs);
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
