/**
 * Threads that die: `process.exit`, an uncaught throw after the handler returned, heap exhaustion under
 * `resourceLimits`, an uncaught throw or an unhandled rejection while the task runs. The call on the dying
 * thread settles with WORKER_CRASHED (or, for the throw after return, with its result), calls on the other
 * thread are untouched, the pool gets back to its thread count, and 200 crashes in a row leak nothing.
 * Runs against the built package and fixtures (`node build.mjs --fast` first).
 */

import { getEventListeners } from 'node:events';
import { readdirSync } from 'node:fs';
import { CommandBus, circuitBreaker, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, waitUntil } from '../control.js';
import {
  ExhaustMemory,
  Exit,
  Hold,
  Nap,
  RejectUnhandled,
  ThrowAfterReturn,
  ThrowDuringTask,
} from '../fixtures/reliabilityMessages.js';
import { fixtureUrl } from '../fixtureUrl.js';
import { rejectionWith } from '../rejectionWith.js';
import { holdBoth } from './holdBoth.js';

const handlers = fixtureUrl('reliabilityHandlers');
const hasProc = (() => {
  try {
    readdirSync('/proc/self/task');
    return true;
  } catch {
    return false;
  }
})();
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function setup(options: ConstructorParameters<typeof WorkerPool>[0] = {}) {
  const threadErrors: unknown[] = [];
  const p = new WorkerPool({ threads: 2, onThreadError: (err) => threadErrors.push(err), ...options });
  pool = p;
  const commands = new CommandBus({ pool: p });
  const queries = new QueryBus({ pool: p });
  commands.registerHandler(Exit, inWorker(handlers, 'exit'));
  commands.registerHandler(ThrowAfterReturn, inWorker(handlers, 'throwAfterReturn'));
  commands.registerHandler(ExhaustMemory, inWorker(handlers, 'exhaustMemory'));
  commands.registerHandler(ThrowDuringTask, inWorker(handlers, 'throwDuringTask'));
  commands.registerHandler(RejectUnhandled, inWorker(handlers, 'rejectUnhandled'));
  queries.registerHandler(Hold, inWorker(handlers, 'hold'));
  queries.registerHandler(Nap, inWorker(handlers, 'nap'));
  return { pool: p, commands, queries, threadErrors };
}

async function backTo(p: WorkerPool, threads: number): Promise<void> {
  await waitUntil(
    () => p.threads === threads && p.inFlight === 0,
    HANG_MS,
    `the pool back at ${threads} threads`,
  );
}

/** The OS thread count once it stopped changing (an exited thread may take a moment to be reaped). */
async function settledOsThreads(): Promise<number> {
  let count = readdirSync('/proc/self/task').length;
  for (let i = 0; i < 80; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = readdirSync('/proc/self/task').length;
    if (now === count && i >= 4) return now;
    count = now;
  }
  return count;
}

/**
 * The OS thread count once it is back to at most `count`, or the last count seen after the hang bound: an
 * exited thread is reaped a moment later, the later the busier the machine, so this waits for that event.
 */
async function osThreadsBackTo(count: number): Promise<number> {
  const deadline = performance.now() + HANG_MS;
  let now = readdirSync('/proc/self/task').length;
  while (now > count && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    now = readdirSync('/proc/self/task').length;
  }
  return now;
}

describe('a thread that dies', () => {
  it.each([
    ['process.exit(1)', Exit],
    ['heap exhaustion under resourceLimits', ExhaustMemory],
    ['an uncaught throw while its task runs', ThrowDuringTask],
    ['an unhandled rejection while its task runs', RejectUnhandled],
  ] as const)(
    'by %s fails only its own call with WORKER_CRASHED; the other thread runs on',
    async (_how, def) => {
      // idleWait 'loop': a stray throw or rejection kills its thread. (With 'block', the default, the
      // thread catches it, reports it and retires after the call; see the tests below.)
      const {
        pool: p,
        commands,
        queries,
      } = setup({
        resourceLimits: { maxOldGenerationSizeMb: 32 },
        idleWait: 'loop',
      });
      await Promise.all([commands.ready(), queries.ready()]);
      // Both threads up and idle: the call below takes one, the crash the other.
      await holdBoth(queries);
      // One call holds the other thread until the crash has happened; it must complete normally.
      const release = new Int32Array(new SharedArrayBuffer(8));
      const other = queries.execute(Hold, { ms: HANG_MS, control: release });
      try {
        const err = await rejectionWith(commands.execute(def, {}), 'WORKER_CRASHED');
        expect(err.handler).toBe(def.name);
      } finally {
        Atomics.store(release, 0, 1);
        Atomics.notify(release, 0);
      }
      const held = await other;
      expect(held.threadId).toBeGreaterThan(0);
      await backTo(p, 2);
      // Both threads work again: two holds at once run on two distinct threads.
      const [a, b] = await holdBoth(queries);
      expect(a).not.toBe(b);
      expect(commands.getMetrics().handlers[def.name]).toMatchObject({
        executions: 1,
        failures: 1,
        inFlight: 0,
      });
      expect(queries.getMetrics()).toMatchObject({ executions: 5, failures: 0, inFlight: 0 });
    },
    60_000,
  );

  it("by a throw after its handler returned (idleWait 'loop'): the call succeeds, onThreadError hears it, the thread is replaced", async () => {
    const { pool: p, commands, queries, threadErrors } = setup({ idleWait: 'loop' });
    await commands.ready();
    const before = await holdBoth(queries);
    // The handler returned before the throw: its result stands. The thread then dies with no task on it,
    // which piscina reports as an 'error' event, passed to onThreadError (unheard, it would crash us).
    await expect(commands.execute(ThrowAfterReturn, {})).resolves.toBe('returned');
    await waitUntil(() => threadErrors.length === 1, HANG_MS, 'onThreadError');
    expect((threadErrors[0] as Error).message).toBe('thrown after the handler returned');
    await backTo(p, 2);
    const after = await holdBoth(queries);
    expect(new Set(before).size).toBe(2);
    expect(new Set(after).size).toBe(2);
    // Exactly one of the two threads is new.
    expect(after.filter((id) => !before.includes(id))).toHaveLength(1);
    expect(commands.getMetrics()).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
    expect(threadErrors).toHaveLength(1);
  });

  it("left behind by a handler, thrown during a later call (idleWait 'block'): no call fails, onThreadError hears it, the thread is replaced", async () => {
    const { pool: p, commands, queries, threadErrors } = setup({ threads: 1 });
    await Promise.all([commands.ready(), queries.ready()]);
    // The timer it leaves waits, frozen with the idle thread, for the next call that yields to the event loop.
    await expect(commands.execute(ThrowAfterReturn, {})).resolves.toBe('returned');
    const first = await queries.execute(Nap, { ms: 30 });
    await waitUntil(() => threadErrors.length === 1, HANG_MS, 'onThreadError');
    expect((threadErrors[0] as Error).message).toBe('thrown after the handler returned');
    // The thread retires when its next call arrives, before starting it: that call runs on its replacement.
    const second = await queries.execute(Hold, { ms: 0 });
    expect(second.threadId).not.toBe(first.threadId);
    await backTo(p, 1);
    expect(commands.getMetrics()).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
    expect(queries.getMetrics()).toMatchObject({ executions: 2, failures: 0, inFlight: 0 });
    expect(threadErrors).toHaveLength(1);
  });

  it("unhandled during its own call (idleWait 'block'): the call keeps its result, onThreadError hears it, the thread is replaced", async () => {
    const { pool: p, commands, queries, threadErrors } = setup({ threads: 1 });
    await Promise.all([commands.ready(), queries.ready()]);
    const first = await queries.execute(Nap, { ms: 30, reject: true });
    await waitUntil(() => threadErrors.length === 1, HANG_MS, 'onThreadError');
    expect((threadErrors[0] as Error).message).toBe('nobody handles this rejection');
    const second = await queries.execute(Hold, { ms: 0 });
    expect(second.threadId).not.toBe(first.threadId);
    await backTo(p, 1);
    expect(queries.getMetrics()).toMatchObject({ executions: 2, failures: 0, inFlight: 0 });
  });

  it('is counted by circuitBreaker(): it opens after failureThreshold crashes', async () => {
    const p = new WorkerPool({ threads: 2 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    commands.registerHandler(Exit, inWorker(handlers, 'exit'), {
      middleware: [circuitBreaker({ failureThreshold: 3, resetAfterMs: 60_000 })],
    });
    for (let i = 0; i < 3; i++) await rejectionWith(commands.execute(Exit, {}), 'WORKER_CRASHED');
    const refused = await rejectionWith(commands.execute(Exit, {}), 'CIRCUIT_OPEN');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(commands.getMetrics().handlers.Exit).toMatchObject({
      executions: 4,
      failures: 4,
      inFlight: 0,
      circuit: 'open',
    });
    await backTo(p, 2);
  });

  it.skipIf(!hasProc)(
    '200 times in a row (process.exit) leaks no thread, listener or count',
    async () => {
      const trials = 200;
      const { pool: p, commands, queries } = setup();
      await Promise.all([commands.ready(), queries.ready()]);
      // A long-lived caller signal shared by every call: a listener left on it would show a leak per call.
      const caller = new AbortController();
      // Warm-up: a crash and a few calls start the helper threads Node keeps for the process's life.
      await rejectionWith(commands.execute(Exit, {}, { signal: caller.signal }), 'WORKER_CRASHED');
      await backTo(p, 2);
      const osBefore = await settledOsThreads();
      const processListeners = process.eventNames().map((e) => [e, process.listenerCount(e)] as const);
      const started = performance.now();
      for (let i = 1; i < trials; i++) {
        await rejectionWith(commands.execute(Exit, {}, { signal: caller.signal }), 'WORKER_CRASHED');
        // Every tenth trial, a normal call in between: the pool still serves.
        if (i % 10 === 0) await queries.execute(Hold, { ms: 0 }, { signal: caller.signal });
      }
      const elapsed = performance.now() - started;
      await backTo(p, 2);
      expect(p.threads).toBe(2);
      // Every exited thread is reaped in the end (a leak keeps the count above, past the hang bound).
      expect(await osThreadsBackTo(osBefore)).toBeLessThanOrEqual(osBefore);
      expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
      expect(process.eventNames().map((e) => [e, process.listenerCount(e)] as const)).toEqual(
        processListeners,
      );
      expect(commands.getMetrics()).toMatchObject({ executions: trials, failures: trials, inFlight: 0 });
      expect(queries.getMetrics()).toMatchObject({ executions: 19, failures: 0, inFlight: 0 });
      expect(commands.pending + queries.pending).toBe(0);
      console.log(
        `${trials} crash trials in ${Math.round(elapsed)} ms (${(elapsed / trials).toFixed(1)} ms each)`,
      );
    },
    // 200 thread replacements: far longer on a busy machine; each crash has its own hang bound.
    300_000,
  );
});
