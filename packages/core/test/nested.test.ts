import type { Middleware } from '@cqrs-pool/core';
import { CommandBus, defineQuery, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { NestedFailure } from './fixtures/messages.js';
import { CallNested, Crash, Describe, DescribeNested, Square, ThrowCustom } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
const InlineDouble = defineQuery('InlineDouble', { input: z.object({ n: z.number() }), output: z.number() });
const GiveFunction = defineQuery('GiveFunction', { input: z.object({}) });
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function setup(threads: number, queryMiddleware: readonly Middleware[] = []) {
  pool = new WorkerPool({ threads });
  const commands = new CommandBus({ pool });
  const queries = new QueryBus({ pool, middleware: queryMiddleware });
  commands.registerHandler(CallNested, inWorker(handlers, 'callNested'));
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  queries.registerHandler(Describe, inWorker(handlers, 'describe'));
  queries.registerHandler(DescribeNested, inWorker(handlers, 'describeNested'));
  queries.registerHandler(ThrowCustom, inWorker(handlers, 'throwCustom'));
  queries.registerHandler(InlineDouble, ({ n }) => n * 2);
  queries.registerHandler(GiveFunction, () => () => 1);
  return { commands, queries };
}

// Every nested call is bounded: a deadlock shows as ABORTED after 15 s, not as a hung test.
const bounded = () => ({ signal: AbortSignal.timeout(15_000) });

describe('nested calls from a worker handler', () => {
  it('complete with one thread: the nested worker handler runs on the thread that awaits it', async () => {
    const { queries } = setup(1);
    const result = await queries.execute(DescribeNested, {}, bounded());
    expect(result.inner.threadId).toBe(result.outer.threadId);
  });

  it('complete when many outer calls nest at once on one thread', async () => {
    const { commands } = setup(1);
    const calls = Array.from({ length: 8 }, (_, n) =>
      commands.execute(CallNested, { kind: 'command', name: 'Square', input: { n } }, bounded()),
    );
    const results = await Promise.all(calls);
    expect(results).toEqual(Array.from({ length: 8 }, (_, n) => ({ ok: true, value: n * n })));
  });

  it('carry the caller metadata, merged with the metadata the handler adds', async () => {
    const { queries } = setup(1);
    const result = await queries.execute(
      DescribeNested,
      {},
      { ...bounded(), metadata: { correlationId: 'c-7' } },
    );
    expect(result.outer.metadata).toEqual({ correlationId: 'c-7' });
    expect(result.inner.metadata).toEqual({ correlationId: 'c-7', hop: 'nested' });
  });

  it('go through the target bus middleware with their name and metadata', async () => {
    const seen: { name: string; metadata: unknown }[] = [];
    const spy: Middleware = (next) => (call) => {
      seen.push({ name: call.name, metadata: call.metadata });
      return next(call);
    };
    const { queries } = setup(2, [spy]);
    await queries.execute(DescribeNested, {}, { ...bounded(), metadata: { correlationId: 'c-8' } });
    expect(seen).toEqual([
      { name: 'DescribeNested', metadata: { correlationId: 'c-8' } },
      { name: 'Describe', metadata: { correlationId: 'c-8', hop: 'nested' } },
    ]);
  });

  it('reach inline handlers on the main thread, across buses', async () => {
    const { commands } = setup(1);
    await expect(
      commands.execute(CallNested, { kind: 'query', name: 'InlineDouble', input: { n: 21 } }, bounded()),
    ).resolves.toEqual({ ok: true, value: 42 });
  });

  it('come back with their code: HANDLER_FAILED with the rebuilt cause, HANDLER_NOT_FOUND', async () => {
    const { commands } = setup(1);
    const failed = (await commands.execute(
      CallNested,
      { kind: 'query', name: 'ThrowCustom', input: { id: 7 } },
      bounded(),
    )) as NestedFailure;
    expect(failed).toMatchObject({ ok: false, isCqrs: true, code: 'HANDLER_FAILED', name: 'CqrsError' });
    expect(failed.cause).toMatchObject({
      name: 'NotFoundError',
      message: 'user 7 not found',
      code: 'E_NOT_FOUND',
      fields: { entity: 'user', id: 7 },
    });
    const missing = await commands.execute(CallNested, { kind: 'query', name: 'Nope', input: {} }, bounded());
    expect(missing).toMatchObject({ ok: false, isCqrs: true, code: 'HANDLER_NOT_FOUND' });
  });

  it('come back NOT_CLONEABLE when the nested result cannot cross to the thread', async () => {
    const { commands } = setup(1);
    const result = await commands.execute(
      CallNested,
      { kind: 'query', name: 'GiveFunction', input: {} },
      bounded(),
    );
    expect(result).toMatchObject({ ok: false, isCqrs: true, code: 'NOT_CLONEABLE' });
  });

  it('rethrown by the outer handler, reach the caller as HANDLER_FAILED caused by the nested error', async () => {
    const { commands } = setup(1);
    const err = await rejectionWith(
      commands.execute(
        CallNested,
        { kind: 'query', name: 'ThrowCustom', input: { id: 9 }, rethrow: true },
        bounded(),
      ),
      'HANDLER_FAILED',
    );
    expect(err.handler).toBe('CallNested');
    expect(isCqrsError(err.cause, 'HANDLER_FAILED')).toBe(true);
    const root = (err.cause as Error).cause as Error & { code?: unknown; id?: unknown };
    expect(root).toMatchObject({ name: 'NotFoundError', code: 'E_NOT_FOUND', id: 9 });
  });
});

describe('a nested worker handler that kills its thread', () => {
  it('fails the outer call with WORKER_CRASHED, and the buses and the pool still close', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    commands.registerHandler(CallNested, inWorker(handlers, 'callNested'));
    commands.registerHandler(Crash, inWorker(handlers, 'crash'));
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await rejectionWith(
      commands.execute(CallNested, { kind: 'command', name: 'Crash', input: {} }),
      'WORKER_CRASHED',
    );
    await expect(commands.execute(Square, { n: 6 })).resolves.toBe(36);
    // Nothing is left waiting for the dead thread: closing drains at once.
    const closed = Promise.all([commands.close(), p.close()]).then(() => 'closed');
    const outcome = await Promise.race([
      closed,
      new Promise((resolve) => setTimeout(resolve, 15_000, 'hung')),
    ]);
    expect(outcome).toBe('closed');
    expect(commands.pending).toBe(0);
  });
});
