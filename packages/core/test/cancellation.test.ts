import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { AwaitSignal, Block, Control, Describe, PollCancel, Spin, Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionAtOnce, rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;
const controls: Int32Array[] = [];

afterEach(async () => {
  for (const control of controls.splice(0)) releaseAll(control);
  await pool?.close();
  pool = undefined;
});

function control(): Int32Array {
  const c = newControl();
  controls.push(c);
  return c;
}

/**
 * A one-thread pool and its buses. A cancelled handler that stops by itself keeps its thread however late
 * it gets to run (a grace of 30 s, not the default 1 s); the runaway test sets a short one.
 */
async function setup(cancelGraceMs = 30_000) {
  const p = new WorkerPool({ threads: 1, cancelGraceMs });
  pool = p;
  const commands = new CommandBus({ pool: p });
  const queries = new QueryBus({ pool: p });
  commands.registerHandler(Block, inWorker(handlers, 'block'));
  commands.registerHandler(Spin, inWorker(handlers, 'spin'));
  commands.registerHandler(PollCancel, inWorker(handlers, 'pollCancel'));
  commands.registerHandler(AwaitSignal, inWorker(handlers, 'awaitSignal'));
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  queries.registerHandler(Describe, inWorker(handlers, 'describe'));
  await Promise.all([commands.ready(), queries.ready()]);
  return { pool: p, commands, queries };
}

/**
 * Aborts `controller`; `pending` must reject with ABORTED at once (before the event loop turns, so without
 * waiting for its thread). Returns the pool's in-flight count at the moment it rejected: 1 while the handler
 * was still running (or queued) when its caller was released.
 */
async function abortAtOnce(
  controller: AbortController,
  pending: Promise<unknown>,
  pool: WorkerPool,
): Promise<number> {
  let inFlightAtRejection = -1;
  const observed = pending.catch((err: unknown) => {
    inFlightAtRejection = pool.inFlight;
    throw err;
  });
  controller.abort();
  await rejectionAtOnce(observed, 'ABORTED');
  return inFlightAtRejection;
}

describe('a caller abort on a worker handler', () => {
  it('settles the call with ABORTED at once while the handler is still running', async () => {
    const { pool, commands, queries } = await setup();
    const c = control();
    const controller = new AbortController();
    const pending = commands.execute(Block, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    // Settled while the handler was still blocked (only the test releases it): it did not wait for it.
    expect(await abortAtOnce(controller, pending, pool)).toBe(1);
    expect(pool.inFlight).toBe(1);
    releaseAll(c);
    await waitUntil(() => pool.inFlight === 0, HANG_MS, 'the handler to return');
    // It returned within its grace period, so its thread was kept.
    await expect(queries.execute(Describe, {})).resolves.toMatchObject({
      threadId: Atomics.load(c, Control.thread),
    });
  });

  it('is seen by a synchronous loop polling ctx.isCancelled(), which then stops', async () => {
    const { pool, commands, queries } = await setup();
    const c = control();
    const controller = new AbortController();
    const pending = commands.execute(PollCancel, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    // Released before the handler had stopped: its caller did not wait for the loop to see the flag.
    expect(await abortAtOnce(controller, pending, pool)).toBe(1);
    await waitUntil(
      () => Atomics.load(c, Control.sawCancel) === 1,
      HANG_MS,
      'the handler to see isCancelled()',
    );
    await waitUntil(() => pool.inFlight === 0, HANG_MS, 'the handler to return');
    await expect(queries.execute(Describe, {})).resolves.toMatchObject({
      threadId: Atomics.load(c, Control.thread),
    });
  });

  it('aborts ctx.signal in the thread with an ABORTED reason', async () => {
    const { pool, commands } = await setup();
    const c = control();
    const controller = new AbortController();
    const pending = commands.execute(AwaitSignal, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    expect(await abortAtOnce(controller, pending, pool)).toBe(1);
    await waitUntil(() => Atomics.load(c, Control.sawCancel) !== 0, HANG_MS, 'ctx.signal to abort');
    expect(Atomics.load(c, Control.sawCancel)).toBe(1);
    await waitUntil(() => pool.inFlight === 0, HANG_MS, 'the handler to return');
  });

  it('leaves ctx.signal alone while the caller has not aborted', async () => {
    const { commands } = await setup();
    const c = control();
    const controller = new AbortController();
    const pending = commands.execute(AwaitSignal, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    // Not aborted: the handler keeps waiting, so the call is still pending a while later.
    const outcome = await Promise.race([
      pending,
      new Promise((resolve) => setTimeout(resolve, 150, 'pending')),
    ]);
    expect(outcome).toBe('pending');
    expect(Atomics.load(c, Control.sawCancel)).toBe(0);
    controller.abort();
    await rejectionWith(pending, 'ABORTED');
  });

  it('never runs a handler whose call was aborted while it waited in the queue', async () => {
    const { pool, commands } = await setup();
    const blocker = control();
    const running = commands.execute(Block, { control: blocker });
    await waitForStarts(blocker);
    const c = control();
    const controller = new AbortController();
    const queued = commands.execute(PollCancel, { control: c }, { signal: controller.signal });
    // Settled while the blocker still held the only thread: it waited for no thread.
    expect(await abortAtOnce(controller, queued, pool)).toBeGreaterThanOrEqual(1);
    releaseAll(blocker);
    await expect(running).resolves.toBe('released');
    // The thread reached the cancelled task after the blocker and skipped it.
    await expect(commands.execute(Square, { n: 2 })).resolves.toBe(4);
    expect(Atomics.load(c, Control.started)).toBe(0);
  });

  it('rejects at once with ABORTED, running nothing, when the signal was aborted before the call', async () => {
    const { commands } = await setup();
    const c = control();
    await rejectionWith(
      commands.execute(PollCancel, { control: c }, { signal: AbortSignal.abort() }),
      'ABORTED',
    );
    await expect(commands.execute(Square, { n: 3 })).resolves.toBe(9);
    expect(Atomics.load(c, Control.started)).toBe(0);
  });

  it('terminates the thread of a runaway handler after cancelGraceMs, and the pool recovers', async () => {
    const graceMs = 200;
    const { pool, commands, queries } = await setup(graceMs);
    const before = await queries.execute(Describe, {});
    const c = control();
    const controller = new AbortController();
    const pending = commands.execute(Spin, { control: c }, { signal: controller.signal });
    await waitForStarts(c);
    const abortedAt = performance.now();
    // Released at once, while the handler spins on in its grace period…
    expect(await abortAtOnce(controller, pending, pool)).toBe(1);
    expect(pool.inFlight).toBe(1);
    // …then its thread is terminated, not before the grace period is over.
    await waitUntil(() => pool.inFlight === 0, HANG_MS, 'the runaway thread to be terminated');
    expect(performance.now() - abortedAt).toBeGreaterThanOrEqual(graceMs - 20);
    // A new thread serves the next calls.
    const after = await queries.execute(Describe, {});
    expect(after.threadId).not.toBe(before.threadId);
    for (let n = 0; n < 5; n++) await expect(commands.execute(Square, { n })).resolves.toBe(n * n);
    await waitUntil(() => pool.threads === 1, HANG_MS, 'the pool to be back at 1 thread');
  });
});
