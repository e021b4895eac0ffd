/**
 * What a careless caller passes as `execute` options: a signal that is no AbortSignal, metadata that is no
 * object. Refused with VALIDATION before anything runs or is allocated — no handler call, no metrics, no
 * cancel slot (a leak of those once made a pool refuse every later call with OVERLOADED).
 */
import { CommandBus, defineCommand, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CallNested, Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
const InlineSquare = defineCommand('InlineSquare', {
  input: z.object({ n: z.number() }),
  output: z.number(),
});
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const badOptions: [string, unknown][] = [
  ['an AbortController as the signal', { signal: new AbortController() }],
  ['an empty object as the signal', { signal: {} }],
  ['a string as the signal', { signal: 'abort' }],
  ['a number as the metadata', { metadata: 5 }],
  ['an array as the metadata', { metadata: ['a'] }],
  ['a number as the options', 7],
];

describe('execute options that are not what they claim', () => {
  it.each(badOptions)(
    '%s: refused with VALIDATION, nothing runs, nothing is counted',
    async (_what, options) => {
      pool = new WorkerPool({ threads: 1, maxQueue: 0 });
      const commands = new CommandBus({ pool });
      let inlineRuns = 0;
      commands.registerHandler(Square, inWorker(handlers, 'square'));
      commands.registerHandler(InlineSquare, ({ n }) => {
        inlineRuns++;
        return n * n;
      });
      const bad = options as Parameters<typeof commands.execute>[2];
      const err = await rejectionWith(commands.execute(Square, { n: 2 }, bad), 'VALIDATION');
      expect(err.message).toMatch(/options/);
      await rejectionWith(commands.execute(InlineSquare, { n: 2 }, bad), 'VALIDATION');
      expect(inlineRuns).toBe(0);
      expect(commands.getMetrics()).toMatchObject({ executions: 0, failures: 0, inFlight: 0 });
      expect(pool.inFlight).toBe(0);
    },
  );

  it('leak nothing: 10,000 refused calls, then a call still runs on a pool with maxQueue 0', async () => {
    pool = new WorkerPool({ threads: 1, maxQueue: 0 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    const refused = await Promise.allSettled(
      Array.from({ length: 10_000 }, (_, i) =>
        commands.execute(Square, { n: i }, { signal: {} as AbortSignal }),
      ),
    );
    expect(refused.every((r) => r.status === 'rejected' && isCqrsError(r.reason, 'VALIDATION'))).toBe(true);
    await expect(commands.execute(Square, { n: 9 }, { signal: new AbortController().signal })).resolves.toBe(
      81,
    );
    expect(commands.getMetrics().executions).toBe(1);
  });

  it('passed by a handler to a nested call are refused the same way', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    const queries = new QueryBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    commands.registerHandler(CallNested, inWorker(handlers, 'callNested'));
    const Outer = defineCommand('Outer', { input: z.object({}) });
    commands.registerHandler(Outer, (_input, ctx) =>
      ctx.commands.execute(Square, { n: 3 }, { signal: new AbortController() as unknown as AbortSignal }),
    );
    const err = await rejectionWith(commands.execute(Outer, {}), 'HANDLER_FAILED');
    expect(isCqrsError(err.cause, 'VALIDATION')).toBe(true);
    expect(commands.getMetrics().handlers.Square?.executions).toBe(0);
    await queries.close();
  });
});

describe('ready() and a closed pool', () => {
  it('rejects with CLOSED once the pool is closed', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await commands.ready();
    await pool.close();
    await rejectionWith(commands.ready(), 'CLOSED');
  });

  it('rejects with CLOSED once the bus is closed', async () => {
    const commands = new CommandBus();
    await commands.close();
    await rejectionWith(commands.ready(), 'CLOSED');
  });
});
