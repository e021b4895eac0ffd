import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newControl, releaseAll, waitForStarts } from './control.js';
import { figures } from './figures.js';
import { Block, Crash, Describe, Square } from './fixtures/messages.js';
import { Burn } from './fixtures/reliabilityMessages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A pool of `threads` threads, each held by a blocking call until its `release`. */
async function heldThreads(threads: number) {
  pool = new WorkerPool({ threads, batching: { maxDelayMs: 60_000 } });
  const commands = new CommandBus({ pool });
  const queries = new QueryBus({ pool });
  commands.registerHandler(Block, inWorker(handlers, 'block'));
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  commands.registerHandler(Crash, inWorker(handlers, 'crash'));
  queries.registerHandler(Describe, inWorker(handlers, 'describe'));
  await Promise.all([commands.ready(), queries.ready()]);
  const holds = Array.from({ length: threads }, () => {
    const control = newControl();
    return { control, done: commands.execute(Block, { control }), release: () => releaseAll(control) };
  });
  for (const hold of holds) await waitForStarts(hold.control);
  return { pool, commands, queries, holds };
}

describe('the board of waiting calls', () => {
  it('gives the calls that wait to the thread that finishes its call, without a message', async () => {
    const { pool, commands, holds } = await heldThreads(1);
    const squares = Array.from({ length: 5 }, (_, n) => commands.execute(Square, { n }));
    await tick();
    // Pinned as one batch while the thread is busy; they still count as waiting for a thread.
    expect(pool.batchStats).toEqual({ messages: 1, calls: 5, pinned: 1 });
    expect(pool.queueSize).toBe(5);
    holds[0]?.release();
    expect(await holds[0]?.done).toBe('released');
    expect(await Promise.all(squares)).toEqual([0, 1, 4, 9, 16]);
    // The thread took them as it finished the held call: nothing was posted to it, nothing taken back.
    expect(pool.batchStats).toEqual({ messages: 1, calls: 5, pinned: 1 });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 5, failures: 0, inFlight: 0 });
    expect(pool.queueSize).toBe(0);
    expect(pool.inFlight).toBe(0);
  });

  it('pins calls of 50 µs or more one per entry, so none waits behind a batch-mate', async () => {
    const { pool, commands, holds } = await heldThreads(1);
    commands.registerHandler(Burn, inWorker(fixtureUrl('reliabilityHandlers'), 'burn'));
    holds[0]?.release();
    await holds[0]?.done;
    // The threads' recent time per call is now a 1 ms call's.
    expect(await commands.execute(Burn, { i: 0, spinMs: 1 })).toBe(0);
    const control = newControl();
    const held = commands.execute(Block, { control });
    await waitForStarts(control);
    const burns = [1, 2, 3].map((i) => commands.execute(Burn, { i, spinMs: 1 }));
    await tick();
    expect(pool.batchStats).toEqual({ messages: 0, calls: 0, pinned: 3 });
    releaseAll(control);
    expect(await held).toBe('released');
    expect(await Promise.all(burns)).toEqual([1, 2, 3]);
  });

  it('sizes the batches of a deep backlog by the threads’ recent time per call, not by the thread’s start', async () => {
    // A batch holds what its calls take in `maxDelayMs`, and a backlog deeper than a batch goes in batches:
    // ~1 ms calls go ~32 to a message here, and still two or more while a busy machine stretches a 1 ms spin
    // up to 16 times. The pool's first message was `ready()`'s probe, which waited for the thread to start and
    // load the module (~100 ms or more): it is not a call, and must not make every call of a backlog travel
    // alone.
    pool = new WorkerPool({ threads: 1, batching: { maxDelayMs: 32 } });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Block, inWorker(handlers, 'block'));
    commands.registerHandler(Burn, inWorker(fixtureUrl('reliabilityHandlers'), 'burn'));
    await commands.ready();
    // The threads' recent time per call is now a 1 ms call's.
    expect(await commands.execute(Burn, { i: 0, spinMs: 1 })).toBe(0);
    const control = newControl();
    const held = commands.execute(Block, { control });
    await waitForStarts(control);
    const burns = Array.from({ length: 80 }, (_, i) => commands.execute(Burn, { i, spinMs: 1 }));
    await tick();
    const { messages, calls } = pool.batchStats;
    releaseAll(control);
    expect(messages).toBeGreaterThan(0);
    expect(calls / messages).toBeGreaterThanOrEqual(2);
    expect(await held).toBe('released');
    expect(await Promise.all(burns)).toEqual(Array.from({ length: 80 }, (_, i) => i));
    expect(figures(commands, 'Burn')).toMatchObject({ executions: 81, failures: 0, inFlight: 0 });
  });

  it('gives a waiting call to the first thread free, not behind the thread still busy', async () => {
    const { queries, holds } = await heldThreads(2);
    const calls = Array.from({ length: 4 }, () => queries.execute(Describe, {}));
    await tick();
    // Only the second thread frees: every call runs there, while the first still holds its call.
    holds[1]?.release();
    const ran = await Promise.all(calls);
    const threadIds = new Set(ran.map((r) => (r as { threadId: number }).threadId));
    expect(threadIds.size).toBe(1);
    holds[0]?.release();
    expect(await holds[0]?.done).toBe('released');
  });

  it('fails only the pinned call that killed its thread; the calls pinned behind it run elsewhere', async () => {
    const { pool, commands, holds } = await heldThreads(1);
    const crash = commands.execute(Crash, {});
    await tick();
    const squares = Array.from({ length: 6 }, (_, n) => commands.execute(Square, { n }));
    await tick();
    expect(pool.batchStats.pinned).toBe(2);
    // Settled before the crash's own rejection is awaited: either way it goes, it is handled from the start.
    const heldOutcome = holds[0]?.done.then(
      (value) => value,
      (err: unknown) => err,
    );
    holds[0]?.release();
    await rejectionWith(crash, 'WORKER_CRASHED');
    // The held call had finished, its result posted, before its thread took the crash from the board: it
    // keeps its result when that is read before the thread's port closes, however late; a result the dying
    // thread's port never delivers is lost, and the call fails like a batch-mate of a crash (README).
    const held = await heldOutcome;
    if (held !== 'released') expect(held).toMatchObject({ code: 'WORKER_CRASHED' });
    expect(figures(commands, 'Block')).toMatchObject({ executions: 1, inFlight: 0 });
    expect(await Promise.all(squares)).toEqual([0, 1, 4, 9, 16, 25]);
    expect(figures(commands, 'Crash')).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 6, failures: 0, inFlight: 0 });
    expect(pool.inFlight).toBe(0);
  });

  it('pins calls that can be cancelled too; one aborted while pinned is skipped by the thread that takes it', async () => {
    const { pool, commands, holds } = await heldThreads(1);
    const controller = new AbortController();
    const doomed = commands.execute(Square, { n: 7 }, { signal: controller.signal });
    const kept = [1, 2, 3].map((n) =>
      commands.execute(Square, { n }, { signal: new AbortController().signal }),
    );
    await tick();
    expect(pool.batchStats.pinned).toBe(1);
    expect(pool.queueSize).toBe(4);
    controller.abort();
    await rejectionWith(doomed, 'ABORTED');
    holds[0]?.release();
    expect(await holds[0]?.done).toBe('released');
    expect(await Promise.all(kept)).toEqual([1, 4, 9]);
    // The aborted call was counted once, by the main thread, as it was refused.
    expect(figures(commands, 'Square')).toMatchObject({ executions: 4, failures: 1, inFlight: 0 });
    expect(pool.inFlight).toBe(0);
  });

  it('runs a burst from many callers on two threads, every result its own, every count exact', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await commands.ready();
    const caller = async (offset: number): Promise<number[]> => {
      const results: number[] = [];
      for (let n = 0; n < 200; n++) results.push(await commands.execute(Square, { n: offset + n }));
      return results;
    };
    const all = await Promise.all(Array.from({ length: 6 }, (_, k) => caller(k * 1000)));
    all.forEach((results, k) => {
      expect(results).toEqual(Array.from({ length: 200 }, (_, n) => (k * 1000 + n) ** 2));
    });
    expect(figures(commands, 'Square')).toMatchObject({ executions: 1200, failures: 0, inFlight: 0 });
    expect(pool.queueSize).toBe(0);
    expect(pool.inFlight).toBe(0);
  });
});
