import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { blockUntilStarted, HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { figures } from './figures.js';
import { AwaitSignal, Block, Control, Crash, Echo, Park, Spin, Square } from './fixtures/messages.js';
import { Burn } from './fixtures/reliabilityMessages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/**
 * A one-thread pool whose thread is held by a blocking call until `release()`. The held call's long run
 * would make the batch-size estimate (calls that fit in `maxDelayMs` at the recent time per call) send the
 * next calls alone, so the delay bound is lifted unless a test sets it. These tests pin down the batches
 * themselves, so the board of waiting calls is off (it sends slow calls alone; see callBoard.test.ts).
 */
async function heldPool(options: ConstructorParameters<typeof WorkerPool>[0] = {}) {
  pool = new WorkerPool({ threads: 1, batching: { maxDelayMs: 60_000 }, board: false, ...options });
  const commands = new CommandBus({ pool });
  const queries = new QueryBus({ pool });
  commands.registerHandler(Block, inWorker(handlers, 'block'));
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  commands.registerHandler(Crash, inWorker(handlers, 'crash'));
  queries.registerHandler(Echo, inWorker(handlers, 'echo'));
  await Promise.all([commands.ready(), queries.ready()]);
  const control = newControl();
  const blocked = commands.execute(Block, { control });
  await waitForStarts(control);
  return { pool, commands, queries, blocked, release: () => releaseAll(control) };
}

describe('micro-batching', () => {
  it('sends the calls that waited for a thread together, and each gets its own result', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    const squares = Array.from({ length: 100 }, (_, n) => commands.execute(Square, { n }));
    expect(pool.queueSize).toBe(100);
    release();
    expect(await blocked).toBe('released');
    expect(await Promise.all(squares)).toEqual(Array.from({ length: 100 }, (_, n) => n * n));
    const stats = pool.batchStats;
    expect(stats.messages).toBeGreaterThan(0);
    expect(stats.calls).toBe(100);
    expect(stats.calls / stats.messages).toBeGreaterThan(1);
    expect(figures(commands, 'Square')).toMatchObject({ executions: 100, failures: 0, inFlight: 0 });
    expect(pool.inFlight).toBe(0);
  });

  it('answers a call of a batch when its handler ends, not when the rest of the batch ends', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    commands.registerHandler(Burn, inWorker(fixtureUrl('reliabilityHandlers'), 'burn'));
    const second = newControl();
    const first = commands.execute(Burn, { i: 7, spinMs: 1 });
    const held = commands.execute(Block, { control: second });
    release();
    await blocked;
    // Both left as one batch, and the only thread is now held by its second call: the first has its result.
    expect(await first).toBe(7);
    expect(pool.batchStats).toEqual({ messages: 1, calls: 2, pinned: 0 });
    releaseAll(second);
    expect(await held).toBe('released');
    expect(figures(commands, 'Burn')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('sends a finished call’s outcome while a batch-mate after it awaits, not when that one ends', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    commands.registerHandler(Park, inWorker(handlers, 'park'));
    const parked = newControl();
    const first = commands.execute(Square, { n: 3 });
    const waiting = commands.execute(Park, { control: parked });
    release();
    await blocked;
    // Both left as one batch; the Square took microseconds (its outcome gathers with batch-mates'), then the
    // Park awaits: the Square's result still arrives, and the Park is still waiting.
    expect(await first).toBe(9);
    await waitForStarts(parked);
    expect(pool.batchStats).toEqual({ messages: 1, calls: 2, pinned: 0 });
    releaseAll(parked);
    expect(await waiting).toBe('released');
  });

  it('in a deep backlog, a batch holds outcomes for a while — and still never behind one that awaits', async () => {
    // Batches of 2 with 4 more calls waiting behind them: a whole batch per thread waits, so outcomes are held
    // (up to half of maxDelayMs). The bound is far above a call's time, so the batch size follows the backlog.
    pool = new WorkerPool({ threads: 1, batching: { maxSize: 2, maxDelayMs: 2_000 }, board: false });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    commands.registerHandler(Park, inWorker(handlers, 'park'));
    await commands.ready();
    const parked = newControl();
    // The thread is free: this one goes alone, and the calls behind it wait for it.
    const lead = commands.execute(Square, { n: 2 });
    const first = commands.execute(Square, { n: 3 });
    const waiting = commands.execute(Park, { control: parked });
    const backlog = Array.from({ length: 4 }, (_, n) => commands.execute(Square, { n }));
    expect(await lead).toBe(4);
    expect(await first).toBe(9);
    await waitForStarts(parked);
    expect(pool.batchStats).toEqual({ messages: 1, calls: 2, pinned: 0 });
    releaseAll(parked);
    expect(await waiting).toBe('released');
    expect(await Promise.all(backlog)).toEqual([0, 1, 4, 9]);
    expect(figures(commands, 'Square')).toMatchObject({ executions: 6, failures: 0, inFlight: 0 });
  });

  it('sends a call alone when a thread is free: a lone call waits for no batch', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    for (let n = 0; n < 20; n++) expect(await commands.execute(Square, { n })).toBe(n * n);
    expect(pool.batchStats).toEqual({ messages: 0, calls: 0, pinned: 0 });
  });

  it('fails only the call that killed its thread: batch-mates that never started run again, alone', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    const crash = commands.execute(Crash, {});
    const squares = Array.from({ length: 10 }, (_, n) => commands.execute(Square, { n }));
    release();
    await blocked;
    await rejectionWith(crash, 'WORKER_CRASHED');
    expect(await Promise.all(squares)).toEqual(Array.from({ length: 10 }, (_, n) => n * n));
    // The crash and the squares left as one batch.
    expect(pool.batchStats).toEqual({ messages: 1, calls: 11, pinned: 0 });
    expect(figures(commands, 'Crash')).toMatchObject({ executions: 1, failures: 1 });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 10, failures: 0 });
    expect(pool.inFlight).toBe(0);
  });

  it('fails only the call whose input cannot be cloned', async () => {
    const { pool, commands, queries, blocked, release } = await heldPool();
    const before = commands.execute(Square, { n: 2 });
    const bad = queries.execute(Echo, { callback: () => 1 });
    const after = queries.execute(Echo, { fine: true });
    release();
    await blocked;
    await rejectionWith(bad, 'NOT_CLONEABLE');
    expect(await before).toBe(4);
    expect(await after).toMatchObject({ input: { fine: true } });
    expect(pool.batchStats.messages).toBe(1);
  });

  it('batches calls that can be cancelled with the others, each with its own result', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    const signal = new AbortController().signal;
    const squares = Array.from({ length: 20 }, (_, n) =>
      commands.execute(Square, { n }, n % 2 === 0 ? { signal } : undefined),
    );
    release();
    await blocked;
    expect(await Promise.all(squares)).toEqual(Array.from({ length: 20 }, (_, n) => n * n));
    expect(pool.batchStats).toMatchObject({ messages: 1, calls: 20 });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 20, failures: 0, inFlight: 0 });
  });

  it('skips a call aborted after its batch left: it never runs, and the calls after it do', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    commands.registerHandler(Park, inWorker(handlers, 'park'));
    const parked = newControl();
    const never = newControl();
    const controller = new AbortController();
    const parking = commands.execute(Park, { control: parked });
    const doomed = commands.execute(Block, { control: never }, { signal: controller.signal });
    const after = commands.execute(Square, { n: 5 });
    release();
    await blocked;
    // The three left as one batch; the thread is in the Park, the Block not started yet.
    await waitForStarts(parked);
    expect(pool.batchStats).toMatchObject({ messages: 1, calls: 3 });
    controller.abort();
    await rejectionWith(doomed, 'ABORTED');
    releaseAll(parked);
    expect(await parking).toBe('released');
    expect(await after).toBe(25);
    expect(Atomics.load(never, 0)).toBe(0);
    // The pool is done with the aborted call when its thread reports it skipped, which may come after the
    // call behind it (an outcome can go early, on another port).
    await waitUntil(() => pool.inFlight === 0, HANG_MS, "the skipped call's outcome");
    // Nothing waits: the abort did not take the call out of the queue a second time (it had left with its
    // batch), which made the count of waiting calls −1 and let later calls pass the ones still waiting.
    expect(pool.queueSize).toBe(0);
  });

  it('terminates the thread of a cancelled call past its grace period; its batch-mates lose nothing', async () => {
    // Batches of two, and two calls waiting behind the first: it holds its outcomes (a deep backlog), so the
    // call before the runaway has its outcome held in its thread when the runaway starts.
    const { pool, commands, blocked, release } = await heldPool({
      cancelGraceMs: 20,
      batching: { maxSize: 2, maxDelayMs: 60_000 },
    });
    commands.registerHandler(Spin, inWorker(handlers, 'spin'));
    const spinning = newControl();
    const controller = new AbortController();
    const before = commands.execute(Square, { n: 2 });
    const runaway = commands.execute(Spin, { control: spinning }, { signal: controller.signal });
    const behind = [3, 4].map((n) => commands.execute(Square, { n }));
    release();
    await blocked;
    await waitForStarts(spinning);
    controller.abort();
    await rejectionWith(runaway, 'ABORTED');
    // Past the grace period the thread goes. The outcome it held was copied to shared memory before the
    // runaway started, and comes from there; the calls behind it never started, and run on a new thread.
    expect(await before).toBe(4);
    expect(await Promise.all(behind)).toEqual([9, 16]);
    expect(pool.batchStats).toMatchObject({ messages: 2, calls: 4 });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 3, failures: 0, inFlight: 0 });
    expect(pool.inFlight).toBe(0);
  });

  it('keeps the thread of a cancelled call that ended in time, though its outcome is still on the way', async () => {
    const { pool, commands, blocked, release } = await heldPool({ cancelGraceMs: 0 });
    commands.registerHandler(AwaitSignal, inWorker(handlers, 'awaitSignal'));
    const cooperative = newControl();
    const mate = newControl();
    const controller = new AbortController();
    const stopping = commands.execute(AwaitSignal, { control: cooperative }, { signal: controller.signal });
    const blockedMate = commands.execute(Block, { control: mate });
    release();
    await blocked;
    await waitForStarts(cooperative);
    expect(pool.batchStats).toMatchObject({ messages: 1, calls: 2 });
    controller.abort();
    // The grace period (0 ms) ends at the next turn of the event loop. Until the batch-mate has started, this
    // thread is held: the cancelled call has ended by then, but its outcome waits in this thread's queue
    // behind the grace timer, which must see that the call ended and leave its thread be.
    blockUntilStarted(mate);
    await rejectionWith(stopping, 'ABORTED');
    // The next turn: the grace timer, armed first, fires first.
    await new Promise((resolve) => setTimeout(resolve, 0));
    releaseAll(mate);
    expect(await blockedMate).toBe('released');
    expect(Atomics.load(cooperative, Control.sawCancel)).toBe(1);
    expect(figures(commands, 'Block')).toMatchObject({ executions: 2, failures: 0, inFlight: 0 });
    // The cancelled call's outcome comes on another port than the batch's answer: it frees its slot then.
    await waitUntil(() => pool.inFlight === 0, HANG_MS, "the cancelled call's outcome");
  });

  it('drops a cancellable call aborted while it waits, and the calls behind it still run', async () => {
    const { pool, commands, blocked, release } = await heldPool();
    const controller = new AbortController();
    const doomed = commands.execute(Square, { n: 3 }, { signal: controller.signal });
    const behind = Array.from({ length: 5 }, (_, n) => commands.execute(Square, { n }));
    controller.abort();
    await rejectionWith(doomed, 'ABORTED');
    const waiting = pool.queueSize;
    release();
    await blocked;
    expect(await Promise.all(behind)).toEqual([0, 1, 4, 9, 16]);
    expect(waiting).toBe(5);
    expect(pool.inFlight).toBe(0);
  });

  it('keeps maxQueue: one call more than may wait is refused with OVERLOADED', async () => {
    const { commands, blocked, release } = await heldPool({ maxQueue: 5 });
    const waiting = Array.from({ length: 5 }, (_, n) => commands.execute(Square, { n }));
    await rejectionWith(commands.execute(Square, { n: 9 }), 'OVERLOADED');
    release();
    await blocked;
    expect(await Promise.all(waiting)).toEqual([0, 1, 4, 9, 16]);
  });

  it('sends the calls behind a slow one alone: a batch is sized to the recent time per call', async () => {
    // The held call took far longer than maxDelayMs: by that estimate, a second call in a batch would wait
    // too long for the first.
    const { pool, commands, blocked, release } = await heldPool({ batching: { maxDelayMs: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const squares = Array.from({ length: 5 }, (_, n) => commands.execute(Square, { n }));
    release();
    await blocked;
    expect(await Promise.all(squares)).toEqual([0, 1, 4, 9, 16]);
    expect(pool.batchStats).toEqual({ messages: 0, calls: 0, pinned: 0 });
  });

  it('sends every call alone with batching: false', async () => {
    const { pool, commands, blocked, release } = await heldPool({ batching: false });
    const squares = Array.from({ length: 20 }, (_, n) => commands.execute(Square, { n }));
    release();
    await blocked;
    expect(await Promise.all(squares)).toEqual(Array.from({ length: 20 }, (_, n) => n * n));
    expect(pool.batchStats).toEqual({ messages: 0, calls: 0, pinned: 0 });
  });

  it('bounds a batch by maxSize', async () => {
    const { pool, commands, blocked, release } = await heldPool({
      batching: { maxSize: 8, maxDelayMs: 60_000 },
    });
    const squares = Array.from({ length: 40 }, (_, n) => commands.execute(Square, { n }));
    release();
    await blocked;
    await Promise.all(squares);
    expect(pool.batchStats).toEqual({ messages: 5, calls: 40, pinned: 0 });
  });

  it.each([
    [{ batching: { maxSize: 0 } }, 'batching.maxSize'],
    [{ batching: { maxSize: 2.5 } }, 'batching.maxSize'],
    [{ batching: { maxDelayMs: -1 } }, 'batching.maxDelayMs'],
    [{ batching: { maxDelayMs: Number.NaN } }, 'batching.maxDelayMs'],
    [{ batching: 'yes' }, 'batching'],
  ])('refuses %j with INVALID_REGISTRATION naming the option', (options, name) => {
    let caught: unknown;
    try {
      new WorkerPool(options as never);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'INVALID_REGISTRATION' });
    expect((caught as Error).message).toContain(name);
  });
});
