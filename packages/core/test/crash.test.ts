import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, waitUntil } from './control.js';
import { Crash, Describe, Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('a thread that dies', () => {
  it('fails its call with WORKER_CRASHED, is replaced, and 20 calls then succeed', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Crash, inWorker(handlers, 'crash'));
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await commands.ready();
    const err = await rejectionWith(commands.execute(Crash, {}), 'WORKER_CRASHED');
    expect(err.handler).toBe('Crash');
    const results = await Promise.all(Array.from({ length: 20 }, (_, n) => commands.execute(Square, { n })));
    expect(results).toEqual(Array.from({ length: 20 }, (_, n) => n * n));
    const p = pool;
    await waitUntil(() => p.threads === 2, HANG_MS, 'the pool to be back at 2 threads');
    expect(p.inFlight).toBe(0);
  });

  it('is replaced even when it was the only thread', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    const queries = new QueryBus({ pool });
    commands.registerHandler(Crash, inWorker(handlers, 'crash'));
    queries.registerHandler(Describe, inWorker(handlers, 'describe'));
    const before = await queries.execute(Describe, {});
    await rejectionWith(commands.execute(Crash, {}), 'WORKER_CRASHED');
    await rejectionWith(commands.execute(Crash, {}), 'WORKER_CRASHED');
    const after = await queries.execute(Describe, {});
    expect(after.threadId).not.toBe(before.threadId);
    const p = pool;
    await waitUntil(() => p.threads === 1, HANG_MS, 'the pool to be back at 1 thread');
  });
});
