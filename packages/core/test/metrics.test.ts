/**
 * `getMetrics()` on real threads: exact counts whichever thread ran a call, refusals and aborts counted once,
 * placement of the recording in the chain, and latencies timed where handlers ran. Runs against the built
 * package and fixtures (`node build.mjs --fast` first).
 */
import type { HandlerMetrics, Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  defineCommand,
  inWorker,
  isCqrsError,
  metrics,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { allThreadsUp, HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { figures } from './figures.js';
import { Block, Control } from './fixtures/messages.js';
import { SameCommand, SameQuery, Work } from './fixtures/metricsHandlers.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';
import { settleAll } from './settleAll.js';

const handlers = fixtureUrl('metricsHandlers');
const blockers = fixtureUrl('handlers');

/** An inline counterpart of the fixture's `Work`, for buses that also run `Work` in the pool. */
const InlineWork = defineCommand('InlineWork', {
  input: z.object({ spinUs: z.number(), fail: z.boolean() }),
  output: z.number(),
});

let pool: WorkerPool | undefined;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await pool?.close();
  pool = undefined;
});

function newPool(options: ConstructorParameters<typeof WorkerPool>[0]): WorkerPool {
  const p = new WorkerPool(options);
  pool = p;
  return p;
}

/** A control array for the blocking fixtures, released after the test whatever happens. */
function control(): Int32Array {
  const c = newControl();
  cleanups.push(() => releaseAll(c));
  return c;
}

/** A promise an inline handler can wait on, opened by the test (or after the test). */
function gate(): { readonly opened: Promise<void>; open(): void } {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  cleanups.push(open);
  return { opened, open };
}

function busyWait(micros: number): void {
  const until = performance.now() + micros / 1000;
  while (performance.now() < until) {
    // Spinning on purpose: the handler's measured latency is this loop.
  }
}

/** The inline handler of `Work`-shaped input: spins, then throws when asked to. */
function inlineWork(input: { spinUs: number; fail: boolean }): number {
  busyWait(input.spinUs);
  if (input.fail) throw new Error('failed on purpose');
  return 0;
}

/** The figures of one handler; fails the test when the bus does not list it. */

function expectOrderedLatency(latency: HandlerMetrics['latency']): void {
  expect(latency.mean).toBeGreaterThan(0);
  expect(latency.p50).toBeGreaterThan(0);
  expect(latency.p50).toBeLessThanOrEqual(latency.p95);
  expect(latency.p95).toBeLessThanOrEqual(latency.p99);
  expect(latency.p99).toBeLessThanOrEqual(latency.max);
  expect(latency.mean).toBeLessThanOrEqual(latency.max);
}

const noLatency = { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
const empty = { executions: 0, failures: 0, inFlight: 0, handlers: {} };

/** Spins the main thread, without yielding to the event loop, until `condition` holds. */
function spinUntil(condition: () => boolean, timeoutMs: number, what: string): void {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** Lets queued microtasks and a macrotask turn run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('metrics of an inline handler', () => {
  it('counts N calls of which F threw, with nothing in flight and ordered latencies', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Work, inlineWork);
    const calls = 200;
    const outcomes = await settleAll(
      Array.from({ length: calls }, (_, i) =>
        bus.execute(Work, { spinUs: 20 + (i % 10) * 40, fail: i % 5 === 0 }),
      ),
    );
    const failed = outcomes.filter((o) => o.status === 'rejected');
    expect(failed).toHaveLength(40);
    for (const o of failed) expect(isCqrsError(o.reason, 'HANDLER_FAILED')).toBe(true);
    const snapshot = bus.getMetrics();
    expect(snapshot).toMatchObject({ executions: calls, failures: 40, inFlight: 0 });
    const work = figures(bus, 'Work');
    expect(work).toMatchObject({ executions: calls, failures: 40, inFlight: 0, circuit: 'closed' });
    expect(work.failuresByCode).toEqual({ HANDLER_FAILED: 40 });
    expectOrderedLatency(work.latency);
    // Every call spun at least 20 µs; the slowest at least 380 µs.
    expect(work.latency.p50).toBeGreaterThanOrEqual(0.02);
    expect(work.latency.max).toBeGreaterThanOrEqual(0.38);
  });

  it('shows a call in flight while it is blocked in the handler, on the bus and on the handler', async () => {
    const bus = new CommandBus();
    const g = gate();
    bus.registerHandler(Work, async () => {
      await g.opened;
      return 1;
    });
    const pending = bus.execute(Work, { spinUs: 0, fail: false });
    expect(bus.getMetrics()).toMatchObject({ executions: 0, failures: 0, inFlight: 1 });
    expect(figures(bus, 'Work')).toMatchObject({ executions: 0, inFlight: 1 });
    g.open();
    await expect(pending).resolves.toBe(1);
    expect(bus.getMetrics()).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
    expect(figures(bus, 'Work').latency.max).toBeGreaterThan(0);
  });
});

describe('metrics of worker handlers', () => {
  it('counts 2000 concurrent calls on 2 threads exactly, failures included', async () => {
    const p = newPool({ threads: 2 });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Work, inWorker(handlers, 'doWork'));
    await bus.ready();
    // Both threads up before the burst (a thread's start-up is the machine's speed), so both take calls.
    await allThreadsUp(p, 2);
    const calls = 2000;
    const fails = (i: number) => i % 7 === 3;
    const outcomes = await settleAll(
      Array.from({ length: calls }, (_, i) =>
        bus.execute(Work, { spinUs: i % 3 === 0 ? 50 : 0, fail: fails(i) }),
      ),
    );
    const expectedFailures = Array.from({ length: calls }, (_, i) => i).filter(fails).length;
    const threads = new Set<number>();
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') threads.add(o.value);
      expect(o.status === 'rejected').toBe(fails(i));
    });
    // Both threads ran calls, so the counts below are sums over two stripes.
    expect(threads.size).toBe(2);
    expect(bus.getMetrics()).toMatchObject({ executions: calls, failures: expectedFailures, inFlight: 0 });
    const work = figures(bus, 'Work');
    expect(work).toMatchObject({ executions: calls, failures: expectedFailures, inFlight: 0 });
    // Counted in the threads; their codes on the main thread, where the errors arrive.
    expect(work.failuresByCode).toEqual({ HANDLER_FAILED: expectedFailures });
    expectOrderedLatency(work.latency);
  });

  it('times handlers in their thread: a 2 ms busy-wait shows p50 of at least 1.5 ms, queueing not included', async () => {
    const threads = 2;
    const p = newPool({ threads });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Work, inWorker(handlers, 'doWork'));
    await bus.ready();
    const started = performance.now();
    await settleAll(Array.from({ length: 100 }, () => bus.execute(Work, { spinUs: 2000, fail: false })));
    const wallMs = performance.now() - started;
    const { latency, executions, failures } = figures(bus, 'Work');
    expect({ executions, failures }).toEqual({ executions: 100, failures: 0 });
    expectOrderedLatency(latency);
    expect(latency.p50).toBeGreaterThanOrEqual(1.5);
    expect(latency.mean).toBeGreaterThanOrEqual(1.5);
    // Timed in the thread, queueing not included: the calls a thread runs one after another never overlap, so
    // their times add up to at most threads × the run's wall time, on any machine. With their ~100 ms of
    // queueing included (100 calls on 2 threads, all sent at once) they would add up to ~25 times that.
    expect(latency.mean * executions).toBeLessThanOrEqual(threads * wallMs);
  });
});

describe('calls refused before their handler', () => {
  it('count as an execution and a failure when a bus middleware refuses them, and are not timed', async () => {
    const refuse: Middleware = (next) => (call) =>
      call.metadata.refuse === 'yes' ? Promise.reject(new Error('refused')) : next(call);
    const bus = new CommandBus({ middleware: [refuse] });
    let ran = 0;
    bus.registerHandler(Work, () => ++ran);
    const outcomes = await settleAll([
      bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'yes' } }),
      bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'yes' } }),
      bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'yes' } }),
    ]);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(ran).toBe(0);
    expect(figures(bus, 'Work')).toMatchObject({
      executions: 3,
      failures: 3,
      inFlight: 0,
      latency: noLatency,
      // A plain Error from a custom middleware carries no code.
      failuresByCode: { UNKNOWN: 3 },
    });
    await bus.execute(Work, { spinUs: 0, fail: false });
    expect(bus.getMetrics()).toMatchObject({ executions: 4, failures: 3, inFlight: 0 });
  });

  it('HANDLER_NOT_FOUND is not counted: there is no handler slot to count it in', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Work, inlineWork);
    await bus.execute(Work, { spinUs: 0, fail: false });
    await rejectionWith(bus.execute('Missing', {}), 'HANDLER_NOT_FOUND');
    // A query definition on a command bus is not found either.
    await rejectionWith(bus.execute(SameQuery as never, { spinUs: 0, fail: false }), 'HANDLER_NOT_FOUND');
    const snapshot = bus.getMetrics();
    expect(Object.keys(snapshot.handlers)).toEqual(['Work']);
    expect(snapshot).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('CLOSED of a closed bus is not counted either', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Work, inlineWork);
    await bus.execute(Work, { spinUs: 0, fail: false });
    await bus.close();
    await rejectionWith(bus.execute(Work, { spinUs: 0, fail: false }), 'CLOSED');
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('a call to a worker handler ready() found broken counts as an execution and a failure', async () => {
    const p = newPool({ threads: 1 });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Work, inWorker(fixtureUrl('badHandlers'), 'notAHandler'));
    await rejectionWith(bus.ready(), 'INVALID_REGISTRATION');
    await rejectionWith(bus.execute(Work, { spinUs: 0, fail: false }), 'INVALID_REGISTRATION');
    expect(figures(bus, 'Work')).toMatchObject({
      executions: 1,
      failures: 1,
      inFlight: 0,
      latency: noLatency,
    });
  });

  it('OVERLOADED counts as an execution and a failure', async () => {
    const p = newPool({ threads: 1, maxQueue: 1 });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Block, inWorker(blockers, 'block'));
    await bus.ready();
    const c = control();
    const running = bus.execute(Block, { control: c });
    await waitForStarts(c);
    const queued = bus.execute(Block, { control: c });
    await waitUntil(() => p.queueSize === 1, HANG_MS, 'the second call to be queued');
    await rejectionWith(bus.execute(Block, { control: c }), 'OVERLOADED');
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 1, inFlight: 2 });
    releaseAll(c);
    await expect(running).resolves.toBe('released');
    await expect(queued).resolves.toBe('released');
    expect(figures(bus, 'Block')).toMatchObject({ executions: 3, failures: 1, inFlight: 0 });
  });
});

describe('calls the caller aborted', () => {
  async function blockingBus(threads = 1) {
    const p = newPool({ threads });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Block, inWorker(blockers, 'block'));
    await bus.ready();
    return { pool: p, bus };
  }

  it('a worker call aborted while queued counts once, and its handler never runs', async () => {
    const { pool: p, bus } = await blockingBus();
    const blocker = control();
    const running = bus.execute(Block, { control: blocker });
    await waitForStarts(blocker);
    const c = control();
    const controller = new AbortController();
    const queued = bus.execute(Block, { control: c }, { signal: controller.signal });
    await waitUntil(() => p.queueSize === 1, HANG_MS, 'the call to be queued');
    controller.abort();
    await rejectionWith(queued, 'ABORTED');
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 1, inFlight: 1 });
    releaseAll(blocker);
    await expect(running).resolves.toBe('released');
    await waitUntil(() => p.inFlight === 0, HANG_MS, 'the pool to drain');
    expect(Atomics.load(c, Control.started)).toBe(0);
    expect(figures(bus, 'Block')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
  });

  it('a worker call aborted while running counts once, though its handler finishes after the abort', async () => {
    const { pool: p, bus } = await blockingBus();
    const c = control();
    const controller = new AbortController();
    const pending = bus.execute(Block, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    controller.abort();
    await rejectionWith(pending, 'ABORTED');
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    // The handler is still blocked; let it return within its grace period.
    expect(p.inFlight).toBe(1);
    releaseAll(c);
    await waitUntil(() => p.inFlight === 0, HANG_MS, 'the handler to return');
    await turn();
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    expect(figures(bus, 'Block').latency).toEqual(noLatency);
  });

  it('a worker handler that finished just before the abort landed keeps its outcome, counted once', async () => {
    const { pool: p, bus } = await blockingBus();
    const c = control();
    const controller = new AbortController();
    const pending = bus.execute(Block, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    releaseAll(c);
    // Without yielding, so the outcome cannot reach this thread: wait until the thread has finished the
    // call (it counts it right after), then abort.
    spinUntil(() => figures(bus, 'Block').executions === 1, HANG_MS, 'the thread to count the call');
    controller.abort();
    await expect(pending).resolves.toBe('released');
    await waitUntil(() => p.inFlight === 0, HANG_MS, 'the pool to drain');
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('a worker call whose signal was aborted before the call counts once', async () => {
    const { bus } = await blockingBus();
    const c = control();
    await rejectionWith(bus.execute(Block, { control: c }, { signal: AbortSignal.abort() }), 'ABORTED');
    expect(Atomics.load(c, Control.started)).toBe(0);
    expect(figures(bus, 'Block')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('an inline call aborted while running counts once, though its handler finishes after the abort', async () => {
    const bus = new CommandBus();
    const g = gate();
    let finished = false;
    bus.registerHandler(Work, async () => {
      await g.opened;
      finished = true;
      return 1;
    });
    const controller = new AbortController();
    const pending = bus.execute(Work, { spinUs: 0, fail: false }, { signal: controller.signal });
    expect(figures(bus, 'Work').inFlight).toBe(1);
    controller.abort();
    await rejectionWith(pending, 'ABORTED');
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    g.open();
    await turn();
    expect(finished).toBe(true);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('an inline call whose signal was aborted before the call counts once, its handler not called', async () => {
    const bus = new CommandBus();
    let ran = 0;
    bus.registerHandler(Work, () => ++ran);
    await rejectionWith(
      bus.execute(Work, { spinUs: 0, fail: false }, { signal: AbortSignal.abort() }),
      'ABORTED',
    );
    expect(ran).toBe(0);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('an inline handler whose result is settled just before the abort lands keeps its outcome, counted once', async () => {
    const bus = new CommandBus();
    const controller = new AbortController();
    bus.registerHandler(Work, () => {
      const result = Promise.resolve(7);
      // Aborts one microtask after the bus has seen the result settle.
      queueMicrotask(() => void result.then(() => controller.abort()));
      return result;
    });
    const pending = bus.execute(Work, { spinUs: 0, fail: false }, { signal: controller.signal });
    await expect(pending).resolves.toBe(7);
    expect(controller.signal.aborted).toBe(true);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('an inline handler that returned while an abort was already queued is ABORTED, counted as a failure', async () => {
    const bus = new CommandBus();
    const controller = new AbortController();
    let returned = false;
    bus.registerHandler(Work, async () => {
      // Runs before the bus sees this handler's (already settled) result.
      queueMicrotask(() => controller.abort());
      returned = true;
      return 7;
    });
    const pending = bus.execute(Work, { spinUs: 0, fail: false }, { signal: controller.signal });
    await rejectionWith(pending, 'ABORTED');
    expect(returned).toBe(true);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });
});

describe('turning metrics off and placing them', () => {
  it('metrics: false records nothing, inline or in the pool', async () => {
    const p = newPool({ threads: 1 });
    const pooled = new CommandBus({ pool: p, metrics: false });
    pooled.registerHandler(Work, inWorker(handlers, 'doWork'));
    pooled.registerHandler(InlineWork, inlineWork);
    const alone = new CommandBus({ metrics: false });
    alone.registerHandler(Work, inlineWork);
    await settleAll([
      pooled.execute(Work, { spinUs: 10, fail: false }),
      pooled.execute(Work, { spinUs: 10, fail: true }),
      pooled.execute(InlineWork, { spinUs: 10, fail: true }),
      alone.execute(Work, { spinUs: 10, fail: false }),
      alone.execute(Work, { spinUs: 10, fail: true }),
    ]);
    expect(pooled.getMetrics()).toEqual(empty);
    expect(alone.getMetrics()).toEqual(empty);
  });

  it('counts refusals of middleware inside metrics(), not of middleware outside it', async () => {
    const refuseWhen =
      (where: string): Middleware =>
      (next) =>
      (call) =>
        call.metadata.refuse === where ? Promise.reject(new Error(`refused ${where}`)) : next(call);
    const bus = new CommandBus({ middleware: [refuseWhen('outside'), metrics(), refuseWhen('inside')] });
    bus.registerHandler(Work, inlineWork);
    await settleAll([
      bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'outside' } }),
      bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'outside' } }),
    ]);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 0, failures: 0, inFlight: 0 });
    await settleAll([bus.execute(Work, { spinUs: 0, fail: false }, { metadata: { refuse: 'inside' } })]);
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    await bus.execute(Work, { spinUs: 0, fail: false });
    expect(figures(bus, 'Work')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
  });

  it('metrics() on one handler of a metrics: false bus records that handler only', async () => {
    const p = newPool({ threads: 1 });
    const bus = new CommandBus({ pool: p, metrics: false });
    bus.registerHandler(Work, inWorker(handlers, 'doWork'), { middleware: [metrics()] });
    bus.registerHandler(InlineWork, inlineWork);
    await bus.ready();
    await settleAll([
      bus.execute(Work, { spinUs: 100, fail: false }),
      bus.execute(Work, { spinUs: 100, fail: true }),
      bus.execute(InlineWork, { spinUs: 0, fail: true }),
    ]);
    const snapshot = bus.getMetrics();
    expect(Object.keys(snapshot.handlers)).toEqual(['Work']);
    expect(snapshot).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
    // Timed in the thread, so the recording reached the pool too.
    expectOrderedLatency(figures(bus, 'Work').latency);
  });
});

describe('buses sharing a pool', () => {
  it('keep separate figures for a command and a query of the same name, each listing only its own', async () => {
    const p = newPool({ threads: 2 });
    const commands = new CommandBus({ pool: p });
    const queries = new QueryBus({ pool: p });
    commands.registerHandler(SameCommand, inWorker(handlers, 'sameCommand'));
    commands.registerHandler(InlineWork, inlineWork);
    queries.registerHandler(SameQuery, inWorker(handlers, 'sameQuery'));
    await Promise.all([commands.ready(), queries.ready()]);
    await settleAll([
      ...Array.from({ length: 3 }, (_, i) => commands.execute(SameCommand, { spinUs: 0, fail: i === 0 })),
      ...Array.from({ length: 5 }, (_, i) => queries.execute(SameQuery, { spinUs: 0, fail: i < 2 })),
    ]);
    const c = commands.getMetrics();
    const q = queries.getMetrics();
    expect(Object.keys(c.handlers).sort()).toEqual(['InlineWork', 'Same']);
    expect(Object.keys(q.handlers)).toEqual(['Same']);
    expect(c).toMatchObject({
      executions: 3,
      failures: 1,
      handlers: { Same: { executions: 3, failures: 1 } },
    });
    expect(q).toMatchObject({
      executions: 5,
      failures: 2,
      handlers: { Same: { executions: 5, failures: 2 } },
    });
  });
});

describe('a thread that dies in its handler', () => {
  it('counts its call as one execution and one failure', async () => {
    const p = newPool({ threads: 2 });
    const bus = new CommandBus({ pool: p });
    bus.registerHandler(Work, inWorker(handlers, 'doWork'));
    await bus.ready();
    await rejectionWith(bus.execute(Work, { spinUs: 0, fail: false, crash: true }), 'WORKER_CRASHED');
    expect(figures(bus, 'Work')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    await bus.execute(Work, { spinUs: 0, fail: false });
    expect(figures(bus, 'Work')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
    await waitUntil(() => p.threads === 2, HANG_MS, 'the pool to be back at 2 threads');
  });
});

describe('middleware that calls next more than once', () => {
  /** Retries once, with `fail: false`, when the first attempt fails. */
  const retryOnce: Middleware = (next) => async (call) => {
    try {
      return await next(call);
    } catch {
      return next({ ...call, input: { ...(call.input as object), fail: false, crash: false } });
    }
  };

  it.each([
    ['inside the recording (the default placement)', [retryOnce]],
    ['outside metrics()', [retryOnce, metrics()]],
  ])('counts each attempt of an inline handler once, retry %s', async (_, middleware) => {
    const bus = new CommandBus({ middleware });
    bus.registerHandler(Work, inlineWork);
    await expect(bus.execute(Work, { spinUs: 10, fail: true })).resolves.toBe(0);
    expect(bus.getMetrics()).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
  });

  it.each([
    ['inside the recording (the default placement)', [retryOnce]],
    ['outside metrics()', [retryOnce, metrics()]],
  ])(
    'counts each attempt of a worker handler once, a failed and a crashed one, retry %s',
    async (_, middleware) => {
      const p = newPool({ threads: 1 });
      const bus = new CommandBus({ pool: p, middleware });
      bus.registerHandler(Work, inWorker(handlers, 'doWork'));
      await bus.ready();
      await expect(bus.execute(Work, { spinUs: 10, fail: true })).resolves.toBeTypeOf('number');
      expect(bus.getMetrics()).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
      // A first attempt whose thread dies is counted as well as the retry that succeeds.
      await expect(bus.execute(Work, { spinUs: 10, fail: false, crash: true })).resolves.toBeTypeOf('number');
      expect(bus.getMetrics()).toMatchObject({ executions: 4, failures: 2, inFlight: 0 });
    },
  );
});

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * No signal (70 %), or one that aborts on a timer of 0–6 ms (worker calls spin up to 1 ms, so it lands on
 * queued, running and finished ones), or after 0–7 microtask hops — between the steps a call settles in.
 */
function randomAbort(random: () => number): { signal?: AbortSignal } {
  const kind = random();
  if (kind < 0.7) return {};
  if (kind < 0.85) return { signal: AbortSignal.timeout(Math.floor(random() * 7)) };
  const controller = new AbortController();
  let hops = Promise.resolve();
  for (let n = Math.floor(random() * 8); n > 0; n--) hops = hops.then();
  void hops.then(() => controller.abort());
  return { signal: controller.signal };
}

describe('exact counts under load', () => {
  it.each([1, 2, 3])(
    'thousands of mixed calls with random failures and caller aborts (seed %i)',
    async (seed) => {
      const random = seeded(seed);
      const p = newPool({ threads: 2 });
      const bus = new CommandBus({ pool: p });
      bus.registerHandler(Work, inWorker(handlers, 'doWork'));
      bus.registerHandler(InlineWork, (input) => {
        // Inline calls end at once, on a settled promise, or on a timer of 0–2 ms, so aborts land before,
        // during and after them, down to the microtask.
        const settle = (): number => {
          if (input.fail) throw new Error('failed on purpose');
          return 0;
        };
        switch (input.spinUs % 3) {
          case 0:
            return settle();
          case 1:
            return Promise.resolve().then(settle);
          default:
            return new Promise<void>((resolve) => setTimeout(resolve, Math.floor(input.spinUs / 400))).then(
              settle,
            );
        }
      });
      await bus.ready();
      const calls = 3000;
      const concurrency = 16;
      const tally = {
        Work: { calls: 0, rejections: 0 },
        InlineWork: { calls: 0, rejections: 0 },
      };
      const settledTimes = new Array<number>(calls).fill(0);
      const codes = new Map<string, number>();
      let nextCall = 0;
      const runner = async (): Promise<void> => {
        while (nextCall < calls) {
          const i = nextCall++;
          const inWorkerThread = random() < 0.5;
          const input = { spinUs: Math.floor(random() * 1000), fail: random() < 0.2 };
          const options = randomAbort(random);
          const name = inWorkerThread ? 'Work' : 'InlineWork';
          tally[name].calls++;
          const call = inWorkerThread
            ? bus.execute(Work, input, options)
            : bus.execute(InlineWork, input, options);
          await call.then(
            () => {
              settledTimes[i] = (settledTimes[i] ?? 0) + 1;
            },
            (err: unknown) => {
              settledTimes[i] = (settledTimes[i] ?? 0) + 1;
              tally[name].rejections++;
              const code = isCqrsError(err) ? err.code : 'not a CqrsError';
              codes.set(code, (codes.get(code) ?? 0) + 1);
            },
          );
        }
      };
      await settleAll(Array.from({ length: concurrency }, runner), 45_000);
      expect(settledTimes.every((times) => times === 1)).toBe(true);
      // Only the expected refusals, and the aborts really raced the calls.
      expect([...codes.keys()].sort()).toEqual(['ABORTED', 'HANDLER_FAILED']);
      expect(codes.get('ABORTED')).toBeGreaterThan(50);
      const expectExact = (): void => {
        const snapshot = bus.getMetrics();
        expect(snapshot).toMatchObject({
          executions: calls,
          failures: tally.Work.rejections + tally.InlineWork.rejections,
          inFlight: 0,
        });
        for (const name of ['Work', 'InlineWork'] as const) {
          expect(snapshot.handlers[name], name).toMatchObject({
            executions: tally[name].calls,
            failures: tally[name].rejections,
            inFlight: 0,
          });
        }
      };
      expectExact();
      // Handlers of aborted calls may still be running; when they finish they must not count again.
      await waitUntil(() => p.inFlight === 0, HANG_MS, 'the pool to drain');
      await turn();
      expectExact();
    },
    90_000,
  );
});
