import type { Middleware } from '@cqrs-pool/core';
import { CommandBus, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Describe, Echo, ReturnFunction, Square, ThrowCustom } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function setup(middleware: readonly Middleware[] = []): { commands: CommandBus; queries: QueryBus } {
  pool = new WorkerPool({ threads: 2, maxQueue: 100 });
  const commands = new CommandBus({ pool, middleware });
  const queries = new QueryBus({ pool, middleware });
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  queries.registerHandler(Echo, inWorker(handlers, 'echo'));
  queries.registerHandler(Describe, inWorker(handlers, 'describe'));
  queries.registerHandler(ThrowCustom, inWorker(handlers, 'throwCustom'));
  queries.registerHandler(ReturnFunction, inWorker(handlers, 'returnFunction'));
  return { commands, queries };
}

describe('worker handlers', () => {
  it('run in a pool thread, not on the main thread, by definition and by name', async () => {
    const { commands, queries } = setup();
    await expect(commands.execute(Square, { n: 7 })).resolves.toBe(49);
    await expect(commands.execute('Square', { n: 8 })).resolves.toBe(64);
    const { threadId } = await queries.execute(Describe, {});
    expect(threadId).toBeGreaterThan(0);
  });

  it('see the caller metadata as ctx.metadata', async () => {
    const { queries } = setup();
    const seen = await queries.execute(Describe, {}, { metadata: { correlationId: 'c-1', user: 'ann' } });
    expect(seen.metadata).toEqual({ correlationId: 'c-1', user: 'ann' });
  });

  it('receive the input and return the result through structured clone', async () => {
    const { queries } = setup();
    const input = { when: new Date(0), tags: new Set(['a']), nested: { list: [1, 2, 3] } };
    await expect(queries.execute(Echo, input)).resolves.toEqual({ input, metadata: {} });
  });

  it('run bus-wide then per-handler middleware on the main thread, composed once', async () => {
    const log: string[] = [];
    let factoryCalls = 0;
    const mark =
      (label: string): Middleware =>
      (next) => {
        factoryCalls++;
        return async (call) => {
          log.push(`${label}>`);
          const result = await next(call);
          log.push(`<${label}`);
          return result;
        };
      };
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool, middleware: [mark('bus')] });
    commands.registerHandler(Square, inWorker(handlers, 'square'), { middleware: [mark('own')] });
    expect(factoryCalls).toBe(2);
    for (let n = 0; n < 5; n++) await expect(commands.execute(Square, { n })).resolves.toBe(n * n);
    expect(factoryCalls).toBe(2);
    expect(log.slice(0, 4)).toEqual(['bus>', 'own>', '<own', '<bus']);
    expect(log).toHaveLength(20);
  });

  it('rebuild a thrown custom error as the cause of HANDLER_FAILED with name, message, stack, code and fields', async () => {
    const { queries } = setup();
    const err = await rejectionWith(queries.execute(ThrowCustom, { id: 42 }), 'HANDLER_FAILED');
    expect(err.handler).toBe('ThrowCustom');
    const cause = err.cause as Error & { code?: unknown; entity?: unknown; id?: unknown };
    expect(cause).toBeInstanceOf(Error);
    expect(cause.name).toBe('NotFoundError');
    expect(cause.message).toBe('user 42 not found');
    expect(cause.code).toBe('E_NOT_FOUND');
    expect(cause.entity).toBe('user');
    expect(cause.id).toBe(42);
    // The stack is the one captured in the thread, pointing at the handler module.
    expect(cause.stack).toContain('NotFoundError: user 42 not found');
    expect(cause.stack).toContain('fixtures/handlers.js');
    expect(isCqrsError(cause)).toBe(false);
  });

  it('refuse an input that cannot be cloned with NOT_CLONEABLE, and the pool keeps working', async () => {
    const { queries } = setup();
    const err = await rejectionWith(queries.execute(Echo, { callback: () => 1 }), 'NOT_CLONEABLE');
    expect(err.handler).toBe('Echo');
    await expect(queries.execute(Echo, 'still fine')).resolves.toEqual({ input: 'still fine', metadata: {} });
    expect(pool?.inFlight).toBe(0);
  });

  it('fail a handler whose result cannot be cloned with NOT_CLONEABLE, and its thread keeps working', async () => {
    pool = new WorkerPool({ threads: 1 });
    const queries = new QueryBus({ pool });
    queries.registerHandler(Describe, inWorker(handlers, 'describe'));
    queries.registerHandler(ReturnFunction, inWorker(handlers, 'returnFunction'));
    queries.registerHandler(Echo, inWorker(handlers, 'echo'));
    const before = await queries.execute(Describe, {});
    const err = await rejectionWith(queries.execute(ReturnFunction, {}), 'NOT_CLONEABLE');
    expect(err.handler).toBe('ReturnFunction');
    expect(String((err.cause as Error).message)).toMatch(/could not be cloned/);
    // The thread that ran it is still the one serving calls: a bad result does not cost a thread.
    await expect(queries.execute(Describe, {})).resolves.toEqual(before);
    for (let i = 0; i < 4; i++) {
      await expect(queries.execute(Echo, i)).resolves.toEqual({ input: i, metadata: {} });
    }
  });
});
