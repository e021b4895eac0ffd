/**
 * validation, timeout and retry on real threads: what a worker handler sees of a timeout (the shared cancel
 * flag, its thread terminated after the grace), what an inline one sees, how the order of retry and timeout
 * changes what is bounded, and exact metrics with these middleware in the chain. Runs against the built
 * package and fixtures (`node build.mjs --fast` first).
 */

import type { HandlerContext, Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  defineCommand,
  defineQuery,
  inWorker,
  QueryBus,
  retry,
  timeout,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
// The middleware come from source until index.ts exports them; errors are recognised by brand, not by
// module copy, so they mix with the built package.
import { allThreadsUp, blockUntilStarted, HANG_MS, newControl, releaseAll, waitUntil } from './control.js';
import { figures } from './figures.js';
import { Control, Describe, PollCancel, Spin, Square } from './fixtures/messages.js';
import {
  BadOutput,
  Flaky,
  FlakyCommand,
  Register,
  RetriedCommand,
  SlowThenFast,
} from './fixtures/timeoutRetryHandlers.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionAtOnce, rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('timeoutRetryHandlers');
const blockers = fixtureUrl('handlers');

let pool: WorkerPool | undefined;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await pool?.close();
  pool = undefined;
});

/**
 * A one-thread pool. A cancelled handler that stops by itself keeps its thread however late it gets to run
 * (a grace of 30 s, not the default 1 s); the runaway test sets its own.
 */
function newPool(options: ConstructorParameters<typeof WorkerPool>[0] = {}): WorkerPool {
  const p = new WorkerPool({ threads: 1, cancelGraceMs: 30_000, ...options });
  pool = p;
  return p;
}

function control(): Int32Array {
  const c = newControl();
  cleanups.push(() => releaseAll(c));
  return c;
}

const runs = (c: Int32Array): number => Atomics.load(c, Control.started);

/** How long `pending` took to reject with `code`, from `started`; and the pool's in-flight count then. */
async function timeRejection(
  pending: Promise<unknown>,
  code: Parameters<typeof rejectionWith>[1],
  started: number,
  p?: WorkerPool,
) {
  let inFlight = -1;
  const err = await rejectionWith(
    pending.catch((e: unknown) => {
      inFlight = p?.inFlight ?? -1;
      throw e;
    }),
    code,
  );
  return { err, elapsed: performance.now() - started, inFlight };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A deadline (`timeout()`) is armed when a call enters it, and a worker handler that has not started when it
// falls due never runs: a test of a timed-out handler needs the handler to start first. These two test
// middleware make that an order of events instead of a race with the machine's speed. (An attempt that must
// *finish* before its deadline still races it: its answer is a message the main thread must take in time, so
// such deadlines below are long, 1 s, against answers that come in microseconds.)

/**
 * Outside `timeout()`: each attempt waits until the pool has fewer than `threads` calls in flight (an attempt
 * before it has returned in its thread), so the attempt is posted to an idle thread at once. The check and
 * the post happen in one synchronous step, so calls waiting together cannot all take the same free thread.
 */
function whenAThreadIsFree(p: WorkerPool, threads: number): Middleware {
  return (next) => async (call) => {
    const deadline = performance.now() + HANG_MS;
    while (p.inFlight >= threads) {
      if (performance.now() > deadline) throw new Error(`no free thread after ${HANG_MS} ms`);
      await sleep(5);
    }
    return next(call);
  };
}

/**
 * Inside `timeout()`: after posting the attempt, blocks the main thread until its handler has started
 * (counted in the input's `control`), so the deadline cannot fall due before (no timer fires meanwhile).
 */
const startsBeforeItsDeadline: Middleware = (next) => (call) => {
  const c = (call.input as { control?: unknown }).control;
  if (!(c instanceof Int32Array)) return next(call);
  const before = runs(c);
  const pending = next(call);
  blockUntilStarted(c, before + 1);
  return pending;
};

describe('validation on real threads', () => {
  it('refuses a bad input to a worker handler with VALIDATION; the handler never runs', async () => {
    const commands = new CommandBus({ pool: newPool(), middleware: [validation()] });
    commands.registerHandler(Register, inWorker(handlers, 'register'));
    await commands.ready();
    const c = control();
    const err = await rejectionWith(commands.execute(Register, { control: c, name: 'ab' }), 'VALIDATION');
    expect(err.message).toMatch(/^Register: invalid input at name: /);
    expect(err.issues?.[0]).toMatchObject({ path: ['name'] });
    expect(runs(c)).toBe(0);
    // A valid call reaches the handler with the parsed input (the default applied on the main thread).
    await expect(commands.execute(Register, { control: c, name: 'abc' })).resolves.toEqual({
      name: 'abc',
      count: 1,
    });
    expect(runs(c)).toBe(1);
    expect(figures(commands, 'Register')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
  });

  it('refuses a bad input to an inline handler with VALIDATION; the handler is never called', async () => {
    const commands = new CommandBus({ middleware: [validation()] });
    const received: unknown[] = [];
    commands.registerHandler(Register, (input) => {
      received.push(input);
      return { name: input.name, count: input.count };
    });
    const c = control();
    await rejectionWith(commands.execute(Register, { control: c, name: 'ab', count: 1.5 }), 'VALIDATION');
    expect(received).toHaveLength(0);
    await commands.execute(Register, { control: c, name: 'abcd' });
    expect(received).toEqual([{ control: c, name: 'abcd', count: 1 }]);
  });

  it('with output: true, refuses a worker handler’s bad result and counts the call as failed', async () => {
    const queries = new QueryBus({ pool: newPool(), middleware: [validation({ output: true })] });
    queries.registerHandler(BadOutput, inWorker(handlers, 'badOutput'));
    await queries.ready();
    const c = control();
    const err = await rejectionWith(queries.execute(BadOutput, { control: c }), 'VALIDATION');
    expect(err.message).toMatch(/^BadOutput: the handler returned an invalid output at id: /);
    expect(runs(c)).toBe(1);
    // The thread counted a success; the caller got a failure, and so do the metrics.
    expect(figures(queries, 'BadOutput')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });
});

describe('timeout on real threads', () => {
  it('times out a worker handler polling ctx.isCancelled() after ms; it sees the cancellation and keeps its thread', async () => {
    const p = newPool();
    const commands = new CommandBus({ pool: p, middleware: [timeout(150)] });
    const queries = new QueryBus({ pool: p });
    commands.registerHandler(PollCancel, inWorker(blockers, 'pollCancel'));
    queries.registerHandler(Describe, inWorker(blockers, 'describe'));
    await Promise.all([commands.ready(), queries.ready()]);
    const c = control();
    const started = performance.now();
    const pending = commands.execute(PollCancel, { control: c });
    blockUntilStarted(c);
    const { err, elapsed, inFlight } = await timeRejection(pending, 'TIMEOUT', started, p);
    expect(err.message).toBe('PollCancel: timed out after 150 ms');
    expect(err.handler).toBe('PollCancel');
    expect(elapsed).toBeGreaterThanOrEqual(145);
    // The caller was released while the handler still ran: it did not wait for the loop to stop.
    expect(inFlight).toBe(1);
    await waitUntil(
      () => Atomics.load(c, Control.sawCancel) === 1,
      HANG_MS,
      'the handler to see isCancelled()',
    );
    await waitUntil(() => p.inFlight === 0, HANG_MS, 'the handler to return');
    // It stopped within the grace period: same thread.
    await expect(queries.execute(Describe, {})).resolves.toMatchObject({
      threadId: Atomics.load(c, Control.thread),
    });
    expect(figures(commands, 'PollCancel')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('times out a runaway worker handler at ms and replaces its thread after graceMs; later calls succeed', async () => {
    const ms = 100;
    const graceMs = 250;
    // The pool's own grace is far longer: the middleware's graceMs is what terminates the thread.
    const p = newPool({ cancelGraceMs: 5000 });
    const commands = new CommandBus({ pool: p });
    const queries = new QueryBus({ pool: p });
    commands.registerHandler(Spin, inWorker(blockers, 'spin'), { middleware: [timeout(ms, { graceMs })] });
    commands.registerHandler(Square, inWorker(blockers, 'square'));
    queries.registerHandler(Describe, inWorker(blockers, 'describe'));
    await Promise.all([commands.ready(), queries.ready()]);
    const before = await queries.execute(Describe, {});
    const c = control();
    const startedAt = performance.now();
    const pending = commands.execute(Spin, { control: c });
    blockUntilStarted(c);
    const { elapsed, inFlight } = await timeRejection(pending, 'TIMEOUT', startedAt, p);
    const timedOutAt = performance.now();
    expect(elapsed).toBeGreaterThanOrEqual(ms - 5);
    // Released while it still spun within its grace…
    expect(inFlight).toBe(1);
    expect(p.inFlight).toBe(1);
    // …then its thread is terminated, not before the grace is over.
    await waitUntil(() => p.inFlight === 0, HANG_MS, 'the runaway thread to be terminated');
    expect(performance.now() - timedOutAt).toBeGreaterThanOrEqual(graceMs - 30);
    const after = await queries.execute(Describe, {});
    expect(after.threadId).not.toBe(before.threadId);
    for (let n = 1; n <= 3; n++) await expect(commands.execute(Square, { n })).resolves.toBe(n * n);
  });

  it('releases the caller of an inline handler with TIMEOUT and tells the handler through ctx.signal', async () => {
    const Wait = defineQuery('Wait', { input: z.object({}) });
    const queries = new QueryBus({ middleware: [timeout(80)] });
    let seen: HandlerContext | undefined;
    queries.registerHandler(Wait, (_input, ctx) => {
      seen = ctx;
      // Never settles by itself: an inline handler cannot be stopped from outside.
      return new Promise((resolve) => cleanups.push(() => resolve(undefined)));
    });
    // The handler never settles by itself: getting TIMEOUT at all is being released without it.
    const started = performance.now();
    const { err, elapsed } = await timeRejection(queries.execute(Wait, {}), 'TIMEOUT', started);
    expect(elapsed).toBeGreaterThanOrEqual(75);
    expect(seen?.signal.aborted).toBe(true);
    expect(seen?.signal.reason).toBe(err);
    expect(seen?.isCancelled()).toBe(true);
    expect(figures(queries, 'Wait')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('still yields ABORTED, not TIMEOUT, when the caller aborts first', async () => {
    const p = newPool();
    const commands = new CommandBus({ pool: p, middleware: [timeout(5000)] });
    commands.registerHandler(PollCancel, inWorker(blockers, 'pollCancel'));
    await commands.ready();
    const c = control();
    const caller = new AbortController();
    const pending = commands.execute(PollCancel, { control: c }, { signal: caller.signal });
    blockUntilStarted(c);
    let inFlight = -1;
    const observed = pending.catch((err: unknown) => {
      inFlight = p.inFlight;
      throw err;
    });
    caller.abort();
    // At once, while the handler still ran: the caller did not wait for it to see the cancellation.
    await rejectionAtOnce(observed, 'ABORTED');
    expect(inFlight).toBe(1);
    await waitUntil(
      () => Atomics.load(c, Control.sawCancel) === 1,
      HANG_MS,
      'the handler to see isCancelled()',
    );
  });
});

describe('retry and timeout: the order matters', () => {
  it('retry outside timeout retries each timed-out attempt', async () => {
    const p = newPool();
    const queries = new QueryBus({
      pool: p,
      middleware: [
        retry({ maxRetries: 3, baseDelayMs: 10, maxDelayMs: 10, jitter: false }),
        whenAThreadIsFree(p, 1),
        timeout(1_000),
        startsBeforeItsDeadline,
      ],
    });
    queries.registerHandler(SlowThenFast, inWorker(handlers, 'slowThenFast'));
    await queries.ready();
    const c = control();
    const started = performance.now();
    // Runs 1 and 2 time out; run 3 answers.
    await expect(queries.execute(SlowThenFast, { control: c, slowRuns: 2 })).resolves.toBe(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 1_000 + 2 * 10 - 10);
    expect(runs(c)).toBe(3);
    expect(Atomics.load(c, Control.sawCancel)).toBe(2);
    // Each attempt is an execution; the two timed out are failures.
    expect(figures(queries, 'SlowThenFast')).toMatchObject({ executions: 3, failures: 2, inFlight: 0 });
  });

  it('timeout outside retry bounds the whole sequence, and no attempt starts after it fired', async () => {
    const p = newPool();
    const queries = new QueryBus({
      pool: p,
      middleware: [timeout(250), retry({ maxRetries: 1000, baseDelayMs: 40, maxDelayMs: 40, jitter: false })],
    });
    queries.registerHandler(Flaky, inWorker(handlers, 'flakyQuery'));
    await queries.ready();
    const c = control();
    const started = performance.now();
    const { err, elapsed } = await timeRejection(
      queries.execute(Flaky, { control: c, failures: 1_000_000 }),
      'TIMEOUT',
      started,
    );
    expect(err.message).toBe('Flaky: timed out after 250 ms');
    expect(elapsed).toBeGreaterThanOrEqual(245);
    // It retried meanwhile, one attempt per 40 ms wait at most (how many fit is the machine's speed)…
    const attempts = runs(c);
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(Math.ceil(250 / 40) + 1);
    // …and stopped when the timeout fired.
    await sleep(200);
    expect(runs(c)).toBe(attempts);
    // Every attempt is counted, a failure each. One more attempt may have been dispatched in the very turn
    // the timeout fired (the backoff timer and the deadline fall due together): it was cancelled before its
    // handler started, so it never ran, and counts — as every call abandoned before its handler finished —
    // as an execution and a failure.
    const { executions, failures, inFlight } = figures(queries, 'Flaky');
    expect(inFlight).toBe(0);
    expect(failures).toBe(executions);
    expect(executions - attempts).toBeGreaterThanOrEqual(0);
    expect(executions - attempts).toBeLessThanOrEqual(1);
  });

  it('timeout outside retry bounds a single slow attempt too', async () => {
    const p = newPool();
    const queries = new QueryBus({
      pool: p,
      middleware: [timeout(120), retry({ baseDelayMs: 10 }), startsBeforeItsDeadline],
    });
    queries.registerHandler(SlowThenFast, inWorker(handlers, 'slowThenFast'));
    await queries.ready();
    const c = control();
    await rejectionWith(queries.execute(SlowThenFast, { control: c, slowRuns: 5 }), 'TIMEOUT');
    await waitUntil(
      () => Atomics.load(c, Control.sawCancel) === 1,
      HANG_MS,
      'the handler to see isCancelled()',
    );
    await sleep(100);
    // The TIMEOUT came from outside the retry: not retried.
    expect(runs(c)).toBe(1);
  });
});

describe('retry on real threads', () => {
  it('does not retry VALIDATION (validation inside retry)', async () => {
    let passes = 0;
    const countPasses: Middleware = (next) => (call) => {
      passes++;
      return next(call);
    };
    const queries = new QueryBus({
      pool: newPool(),
      middleware: [retry({ baseDelayMs: 10 }), countPasses, validation()],
    });
    queries.registerHandler(Flaky, inWorker(handlers, 'flakyQuery'));
    const c = control();
    // At once: no retry wait came before it.
    await rejectionAtOnce(queries.execute(Flaky, { control: c, failures: -1 }), 'VALIDATION');
    expect(passes).toBe(1);
    expect(runs(c)).toBe(0);
    expect(figures(queries, 'Flaky')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('stops at once when the caller aborts during a wait; no further attempt', async () => {
    const p = newPool();
    const queries = new QueryBus({
      pool: p,
      middleware: [retry({ baseDelayMs: 60_000, maxDelayMs: 60_000, jitter: false })],
    });
    queries.registerHandler(Flaky, inWorker(handlers, 'flakyQuery'));
    await queries.ready();
    const c = control();
    const caller = new AbortController();
    const pending = queries.execute(Flaky, { control: c, failures: 10 }, { signal: caller.signal });
    // The first attempt failed and came back; the retry now waits a minute.
    await waitUntil(
      () => figures(queries, 'Flaky').failures === 1 && p.inFlight === 0,
      HANG_MS,
      'the first attempt to fail',
    );
    caller.abort();
    // At once: the abort ended the wait, it did not wait it out.
    await rejectionAtOnce(pending, 'ABORTED');
    await sleep(100);
    expect(runs(c)).toBe(1);
    expect(figures(queries, 'Flaky')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('leaves commands alone unless onCommands: true', async () => {
    const commands = new CommandBus({ pool: newPool(), middleware: [retry({ baseDelayMs: 5 })] });
    commands.registerHandler(FlakyCommand, inWorker(handlers, 'flakyCommand'));
    commands.registerHandler(RetriedCommand, inWorker(handlers, 'retriedCommand'), {
      middleware: [retry({ baseDelayMs: 5, onCommands: true })],
    });
    await commands.ready();
    const once = control();
    await rejectionWith(commands.execute(FlakyCommand, { control: once, failures: 1 }), 'HANDLER_FAILED');
    expect(runs(once)).toBe(1);
    const twice = control();
    await expect(commands.execute(RetriedCommand, { control: twice, failures: 1 })).resolves.toBe(2);
    expect(runs(twice)).toBe(2);
  });
});

describe('metrics with validation, timeout and retry in the chain', () => {
  it('stay exact: every attempt is an execution, every refusal an execution and a failure', async () => {
    const InlineFlaky = defineQuery('InlineFlaky', { input: z.object({ failures: z.number() }) });
    const p = newPool({ threads: 2 });
    const queries = new QueryBus({
      pool: p,
      middleware: [
        retry({ maxRetries: 2, baseDelayMs: 1, maxDelayMs: 1, jitter: false }),
        validation(),
        // Every worker attempt starts before its deadline, and only the one meant to time out does (see
        // startsBeforeItsDeadline).
        whenAThreadIsFree(p, 2),
        timeout(1_000),
        startsBeforeItsDeadline,
      ],
    });
    queries.registerHandler(Flaky, inWorker(handlers, 'flakyQuery'));
    queries.registerHandler(SlowThenFast, inWorker(handlers, 'slowThenFast'));
    let inlineRuns = 0;
    queries.registerHandler(InlineFlaky, (input) => {
      inlineRuns++;
      if (inlineRuns <= input.failures) throw new Error('inline failure');
      return inlineRuns;
    });
    await queries.ready();
    await allThreadsUp(p, 2);
    const outcomes = await Promise.allSettled([
      // 3 attempts, the last succeeds: 3 executions, 2 failures.
      queries.execute(Flaky, { control: control(), failures: 2 }),
      // Refused by validation, not retried: 1 and 1.
      queries.execute(Flaky, { control: control(), failures: 0.5 }),
      // 3 attempts, all fail: 3 and 3.
      queries.execute(Flaky, { control: control(), failures: 99 }),
      // The first attempt times out, the second answers: 2 and 1.
      queries.execute(SlowThenFast, { control: control(), slowRuns: 1 }),
      // Inline: 2 attempts: 2 and 1.
      queries.execute(InlineFlaky, { failures: 1 }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(figures(queries, 'Flaky')).toMatchObject({ executions: 7, failures: 6, inFlight: 0 });
    expect(figures(queries, 'SlowThenFast')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
    expect(figures(queries, 'InlineFlaky')).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
    expect(queries.getMetrics()).toMatchObject({ executions: 11, failures: 8, inFlight: 0 });
  });

  it('a command refused by validation is counted once even with retry on commands', async () => {
    const Put = defineCommand('Put', { input: z.object({ n: z.number() }) });
    const commands = new CommandBus({ middleware: [retry({ onCommands: true }), validation()] });
    commands.registerHandler(Put, () => 'ok');
    await rejectionWith(commands.execute(Put, { n: 'x' } as never), 'VALIDATION');
    expect(figures(commands, 'Put')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });
});
