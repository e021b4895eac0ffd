import { readFileSync } from 'node:fs';
import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { threadNice } from './fixtures/handlers.js';
import { Crash, Niceness } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

/** The nice value of each of a 2-thread pool's threads: calls go, two at a time, until both threads answered. */
async function poolThreadsNice(options: { niceIncrement?: number }): Promise<number[]> {
  pool = new WorkerPool({ threads: 2, ...options });
  const queries = new QueryBus({ pool });
  queries.registerHandler(Niceness, inWorker(handlers, 'niceness'));
  await queries.ready();
  const byThread = new Map<number, number>();
  for (let round = 0; round < 100 && byThread.size < 2; round++) {
    for (const seen of await Promise.all([queries.execute(Niceness, {}), queries.execute(Niceness, {})])) {
      byThread.set(seen.threadId, seen.nice);
    }
  }
  return [...byThread.values()];
}

const mainNice = (): number => threadNice(readFileSync('/proc/thread-self/stat', 'utf8'));

describe.skipIf(process.platform !== 'linux')('pool threads’ CPU priority (niceIncrement)', () => {
  it('leaves the threads at the main thread’s priority by default', async () => {
    const main = mainNice();
    expect(await poolThreadsNice({})).toEqual([main, main]);
  });

  it('runs the threads the given number of nice levels below the main thread, which keeps its own', async () => {
    const main = mainNice();
    const expected = Math.min(19, main + 10);
    expect(await poolThreadsNice({ niceIncrement: 10 })).toEqual([expected, expected]);
    expect(mainNice()).toBe(main);
    await pool?.close();
    expect(await poolThreadsNice({ niceIncrement: 3 })).toEqual([
      Math.min(19, main + 3),
      Math.min(19, main + 3),
    ]);
  });
});

describe.skipIf(process.platform !== 'linux')('a replacement thread', () => {
  it('starts at the pool’s priority too', async () => {
    const main = mainNice();
    pool = new WorkerPool({ threads: 1, niceIncrement: 4 });
    const queries = new QueryBus({ pool });
    const commands = new CommandBus({ pool });
    queries.registerHandler(Niceness, inWorker(handlers, 'niceness'));
    commands.registerHandler(Crash, inWorker(handlers, 'crash'));
    const first = await queries.execute(Niceness, {});
    await rejectionWith(commands.execute(Crash, {}), 'WORKER_CRASHED');
    const second = await queries.execute(Niceness, {});
    expect(second.threadId).not.toBe(first.threadId);
    expect(second.nice).toBe(Math.min(19, main + 4));
  });
});

describe('niceIncrement validation', () => {
  it.each([-1, 1.5, 20, Number.NaN, '5'])('refuses %s with INVALID_REGISTRATION naming the option', (bad) => {
    expect(() => new WorkerPool({ threads: 1, niceIncrement: bad as number })).toThrow(
      expect.objectContaining({
        code: 'INVALID_REGISTRATION',
        message: expect.stringContaining('niceIncrement'),
      }),
    );
  });
});
