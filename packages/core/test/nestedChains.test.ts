/**
 * Chains of nested calls through any mix of inline and worker handlers. A worker handler awaiting a nested
 * call holds its thread, so every worker handler further down its chain — also behind inline hops — must run
 * on that thread, or a pool whose threads are all held waits for ever. And a chain that never ends (a
 * handler calling itself) must be stopped at a depth limit, at once, with its own error.
 */
import { threadId as mainThreadId } from 'node:worker_threads';
import { defineQuery, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HopInline, HopWorker, Recurse } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
const RecurseInline = defineQuery('RecurseInline', {
  input: z.object({ level: z.number() }),
  output: z.number(),
});
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function setup(threads: number, maxNestingDepth?: number) {
  pool = new WorkerPool({ threads, ...(maxNestingDepth === undefined ? {} : { maxNestingDepth }) });
  const queries = new QueryBus({ pool });
  queries.registerHandler(HopWorker, inWorker(handlers, 'hopWorker'));
  queries.registerHandler(HopInline, async ({ path }, ctx) => {
    if (path === '') return [mainThreadId];
    const next = path[0] === 'w' ? HopWorker : HopInline;
    return [mainThreadId, ...(await ctx.queries.execute(next, { path: path.slice(1) }))];
  });
  queries.registerHandler(Recurse, inWorker(handlers, 'recurse'));
  queries.registerHandler(
    RecurseInline,
    async ({ level }, ctx) => (await ctx.queries.execute(RecurseInline, { level: level + 1 })) + 1,
  );
  return queries;
}

/** Runs the chain `path` ('w'/'i' per hop) and checks that every worker hop after the first ran on its thread. */
async function runChain(queries: QueryBus, path: string): Promise<void> {
  const first = path[0] === 'w' ? HopWorker : HopInline;
  // A deadlock shows as this bound's ABORTED instead of a hung test.
  const threads = await queries.execute(
    first,
    { path: path.slice(1) },
    { signal: AbortSignal.timeout(15_000) },
  );
  expect(threads).toHaveLength(path.length);
  const workerThreads = [...path].flatMap((hop, i) => (hop === 'w' ? [threads[i]] : []));
  for (const [i, hop] of [...path].entries()) {
    if (hop === 'i') expect(threads[i]).toBe(mainThreadId);
  }
  // The first worker hop holds its thread while it awaits the rest: all later worker hops run there.
  expect(new Set(workerThreads).size).toBeLessThanOrEqual(1);
}

describe('nested chains of inline and worker handlers', () => {
  it.each(['wiw', 'wiiw', 'wiwiw', 'iwiw', 'wwiw', 'wiwwiiw'])(
    '%s completes with one thread, every worker hop on the thread of the first',
    async (path) => {
      await runChain(setup(1), path);
    },
  );

  it('worker → inline → worker completes for many outer calls at once on 2 threads', async () => {
    const queries = setup(2);
    await Promise.all(Array.from({ length: 8 }, () => runChain(queries, 'wiw')));
  });

  it('any mix of hops, concurrently, on 1 and 2 threads (property)', async () => {
    for (const threads of [1, 2]) {
      const queries = setup(threads);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.stringMatching(/^[wi]{1,7}$/), { minLength: 1, maxLength: 4 }),
          async (paths) => {
            await Promise.all(paths.map((path) => runChain(queries, path)));
          },
        ),
        { numRuns: 25 },
      );
      await pool?.close();
    }
  });
});

describe('nesting depth', () => {
  it('a worker handler calling itself ends at once with NESTING_TOO_DEEP, 33 executions in', async () => {
    const queries = setup(1);
    const err = await rejectionWith(queries.execute(Recurse, { level: 0 }), 'HANDLER_FAILED', 15_000);
    // Each hop rethrows: the chain of causes is cut where it crosses a thread (8 causes), the message keeps
    // the root's words.
    expect(err.message).toMatch(/Recurse: nested deeper than 32 levels/);
    expect(queries.getMetrics().handlers.Recurse).toMatchObject({
      executions: 33,
      failures: 33,
      inFlight: 0,
    });
  });

  it('an inline handler calling itself ends the same way', async () => {
    const queries = setup(1);
    const err = await rejectionWith(queries.execute(RecurseInline, { level: 0 }), 'HANDLER_FAILED');
    let root: unknown = err;
    let layers = 0;
    while (isCqrsError(root, 'HANDLER_FAILED')) {
      root = root.cause;
      layers++;
    }
    expect(isCqrsError(root, 'NESTING_TOO_DEEP')).toBe(true);
    // One HANDLER_FAILED layer per hop that rethrew, no more; the refused call itself is not counted.
    expect(layers).toBe(33);
    expect(queries.getMetrics().handlers.RecurseInline).toMatchObject({ executions: 33, failures: 33 });
  });

  it('follows options.maxNestingDepth: a chain as deep as the limit runs, one hop more is refused', async () => {
    const queries = setup(1, 4);
    await runChain(queries, 'wiwiw');
    const err = await rejectionWith(queries.execute(HopWorker, { path: 'iwiwi' }), 'HANDLER_FAILED');
    let root: unknown = err;
    while (isCqrsError(root, 'HANDLER_FAILED')) root = root.cause;
    expect(isCqrsError(root, 'NESTING_TOO_DEEP')).toBe(true);
    for (const maxNestingDepth of [-1, 1.5, Number.NaN, '4']) {
      expect(() => new WorkerPool({ maxNestingDepth: maxNestingDepth as number })).toThrow(
        expect.objectContaining({
          code: 'INVALID_REGISTRATION',
          message: expect.stringMatching(/maxNestingDepth/),
        }),
      );
    }
  });
});
