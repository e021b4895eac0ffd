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
import { newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
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
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('timeoutRetryHandlers');
const blockers = fixtureUrl('handlers');

let pool: WorkerPool | undefined;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await pool?.close();
  pool = undefined;
});

function newPool(options: ConstructorParameters<typeof WorkerPool>[0] = {}): WorkerPool {
  const p = new WorkerPool({ threads: 1, ...options });
  pool = p;
  return p;
}

function control(): Int32Array {
  const c = newControl();
  cleanups.push(() => releaseAll(c));
  return c;
}

const runs = (c: Int32Array): number => Atomics.load(c, Control.started);

/** How long `pending` took to reject with `code`, from now. */
/**
 * How long until `call` rejects with `code`. Given the call itself (a function), the clock starts before the
 * call does, as its deadline does: started after `execute` returned, it would miss the time `execute` took
 * synchronously, and a timeout could look early by that much on a busy machine.
 */
async function timeRejection(
  call: Promise<unknown> | (() => Promise<unknown>),
  code: Parameters<typeof rejectionWith>[1],
) {
  const started = performance.now();
  const err = await rejectionWith(typeof call === 'function' ? call() : call, code);
  return { err, elapsed: performance.now() - started };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  it('times out a worker handler polling ctx.isCancelled() at ≈ ms; it sees the cancellation and keeps its thread', async () => {
    const p = newPool();
    const commands = new CommandBus({ pool: p, middleware: [timeout(150)] });
    const queries = new QueryBus({ pool: p });
    commands.registerHandler(PollCancel, inWorker(blockers, 'pollCancel'));
    queries.registerHandler(Describe, inWorker(blockers, 'describe'));
    await Promise.all([commands.ready(), queries.ready()]);
    const c = control();
    const { err, elapsed } = await timeRejection(
      () => commands.execute(PollCancel, { control: c }),
      'TIMEOUT',
    );
    expect(err.message).toBe('PollCancel: timed out after 150 ms');
    expect(err.handler).toBe('PollCancel');
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(150 + 1000);
    await waitUntil(() => Atomics.load(c, Control.sawCancel) === 1, 2000, 'the handler to see isCancelled()');
    await waitUntil(() => p.inFlight === 0, 2000, 'the handler to return');
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
    await rejectionWith(pending, 'TIMEOUT');
    const timedOutAt = performance.now();
    expect(timedOutAt - startedAt).toBeGreaterThanOrEqual(ms - 5);
    expect(timedOutAt - startedAt).toBeLessThan(ms + 1000);
    await waitForStarts(c);
    // Still spinning within its grace…
    expect(p.inFlight).toBe(1);
    // …then its thread is terminated.
    await waitUntil(() => p.inFlight === 0, 4000, 'the runaway thread to be terminated');
    const terminatedAfter = performance.now() - timedOutAt;
    expect(terminatedAfter).toBeGreaterThanOrEqual(graceMs - 30);
    expect(terminatedAfter).toBeLessThan(graceMs + 1500);
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
    const { err, elapsed } = await timeRejection(() => queries.execute(Wait, {}), 'TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(75);
    expect(elapsed).toBeLessThan(80 + 1000);
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
    await waitForStarts(c);
    caller.abort();
    const { elapsed } = await timeRejection(pending, 'ABORTED');
    expect(elapsed).toBeLessThan(200);
    await waitUntil(() => Atomics.load(c, Control.sawCancel) === 1, 2000, 'the handler to see isCancelled()');
  });
});

describe('retry and timeout: the order matters', () => {
  it('retry outside timeout retries each timed-out attempt', async () => {
    const p = newPool();
    const queries = new QueryBus({
      pool: p,
      middleware: [retry({ maxRetries: 3, baseDelayMs: 10, maxDelayMs: 10, jitter: false }), timeout(100)],
    });
    queries.registerHandler(SlowThenFast, inWorker(handlers, 'slowThenFast'));
    await queries.ready();
    const c = control();
    const started = performance.now();
    // Runs 1 and 2 time out; run 3 answers.
    await expect(queries.execute(SlowThenFast, { control: c, slowRuns: 2 })).resolves.toBe(3);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(2 * 100 + 2 * 10 - 10);
    expect(elapsed).toBeLessThan(2 * 100 + 2 * 10 + 800);
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
    const { err, elapsed } = await timeRejection(
      () => queries.execute(Flaky, { control: c, failures: 1_000_000 }),
      'TIMEOUT',
    );
    expect(err.message).toBe('Flaky: timed out after 250 ms');
    expect(elapsed).toBeGreaterThanOrEqual(245);
    expect(elapsed).toBeLessThan(250 + 1000);
    // It did retry meanwhile (one attempt every ~40 ms)…
    const attempts = runs(c);
    expect(attempts).toBeGreaterThanOrEqual(2);
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
    const queries = new QueryBus({ pool: p, middleware: [timeout(120), retry({ baseDelayMs: 10 })] });
    queries.registerHandler(SlowThenFast, inWorker(handlers, 'slowThenFast'));
    await queries.ready();
    const c = control();
    await timeRejection(queries.execute(SlowThenFast, { control: c, slowRuns: 5 }), 'TIMEOUT');
    await waitUntil(() => Atomics.load(c, Control.sawCancel) === 1, 2000, 'the handler to see isCancelled()');
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
    const { elapsed } = await timeRejection(
      queries.execute(Flaky, { control: c, failures: -1 }),
      'VALIDATION',
    );
    expect(elapsed).toBeLessThan(500);
    expect(passes).toBe(1);
    expect(runs(c)).toBe(0);
    expect(figures(queries, 'Flaky')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
  });

  it('stops at once when the caller aborts during a wait; no further attempt', async () => {
    const queries = new QueryBus({
      pool: newPool(),
      middleware: [retry({ baseDelayMs: 2000, maxDelayMs: 2000, jitter: false })],
    });
    queries.registerHandler(Flaky, inWorker(handlers, 'flakyQuery'));
    await queries.ready();
    const c = control();
    const caller = new AbortController();
    const pending = queries.execute(Flaky, { control: c, failures: 10 }, { signal: caller.signal });
    await waitForStarts(c);
    // The first attempt failed; the retry now waits 2 s.
    await sleep(50);
    caller.abort();
    const { elapsed } = await timeRejection(pending, 'ABORTED');
    expect(elapsed).toBeLessThan(200);
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
        timeout(150),
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
