import type { CqrsError, ErrorCode } from '@cqrs-pool/core';
import {
  CommandBus,
  defineCommand,
  inWorker,
  isCqrsError,
  QueryBus,
  timeout,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CallNested, Square, ThrowCustom } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
const Boom = defineCommand('Boom', { input: z.object({ id: z.number() }) });
const Slow = defineCommand('Slow', { input: z.object({}) });
const pool = new WorkerPool({ threads: 1 });

afterAll(() => pool.close());

/** The error and every error in its cause chain. */
function chain(err: unknown): Error[] {
  const out: Error[] = [];
  for (let e = err; e instanceof Error || isCqrsError(e); e = (e as Error).cause) out.push(e as Error);
  return out;
}

function expectOneLineStacks(err: unknown): void {
  const errors = chain(err);
  expect(errors.length).toBeGreaterThan(0);
  for (const e of errors) {
    expect(e.stack).toBe(`${e.name}: ${e.message}`);
    expect(e.stack).not.toContain('\n');
  }
}

function buses(errorStacks: boolean) {
  const commands = new CommandBus({ pool, errorStacks, middleware: [validation()] });
  const queries = new QueryBus({ pool, errorStacks });
  commands.registerHandler(Boom, ({ id }) => {
    throw new Error(`inline ${id} failed`, { cause: new TypeError('deeper') });
  });
  commands.registerHandler(Square, inWorker(handlers, 'square'));
  commands.registerHandler(CallNested, inWorker(handlers, 'callNested'));
  queries.registerHandler(ThrowCustom, inWorker(handlers, 'throwCustom'));
  return { commands, queries };
}

describe('errorStacks: false', () => {
  const { commands, queries } = buses(false);

  it('cuts the stacks of an inline handler failure and its cause chain to one line', async () => {
    const err = await rejectionWith(commands.execute(Boom, { id: 1 }), 'HANDLER_FAILED');
    expectOneLineStacks(err);
    expect(chain(err).map((e) => e.message)).toEqual([
      'Boom failed: inline 1 failed',
      'inline 1 failed',
      'deeper',
    ]);
  });

  it('cuts the stacks of a worker handler failure rebuilt from its thread', async () => {
    const err = await rejectionWith(queries.execute(ThrowCustom, { id: 3 }), 'HANDLER_FAILED');
    expectOneLineStacks(err);
    const cause = err.cause as Error & { entity?: unknown };
    expect(cause.name).toBe('NotFoundError');
    expect(cause.entity).toBe('user'); // fields survive; only the stack goes
  });

  it('cuts the stack of a VALIDATION refusal (and keeps its issues)', async () => {
    const err = await rejectionWith(commands.execute(Square, { n: 'two' } as never), 'VALIDATION');
    expectOneLineStacks(err);
    expect(err.issues?.length).toBeGreaterThan(0);
  });

  it('cuts the stacks of refusals before any chain runs, and on a bus without middleware', async () => {
    expectOneLineStacks(await rejectionWith(commands.execute('Nope', {}), 'HANDLER_NOT_FOUND'));
    const bare = new CommandBus({ errorStacks: false, metrics: false });
    bare.registerHandler(Boom, () => {
      throw new Error('bare');
    });
    expectOneLineStacks(await rejectionWith(bare.execute(Boom, { id: 2 }), 'HANDLER_FAILED'));
    await bare.close();
    expectOneLineStacks(await rejectionWith(bare.execute(Boom, { id: 2 }), 'CLOSED'));
  });

  it('cuts the stacks of TIMEOUT and of a nested failure that crossed threads twice', async () => {
    const timed = new CommandBus({ errorStacks: false, middleware: [timeout(5)] });
    timed.registerHandler(Slow, () => new Promise((resolve) => setTimeout(resolve, 50)));
    expectOneLineStacks(await rejectionWith(timed.execute(Slow, {}), 'TIMEOUT'));
    const nested = await rejectionWith(
      commands.execute(CallNested, { kind: 'query', name: 'ThrowCustom', input: { id: 9 }, rethrow: true }),
      'HANDLER_FAILED',
    );
    expectOneLineStacks(nested);
  });
});

describe('errorStacks (default true)', () => {
  it('keeps full stacks on the error and its causes', async () => {
    const { commands, queries } = buses(true);
    const inline = await rejectionWith(commands.execute(Boom, { id: 1 }), 'HANDLER_FAILED');
    for (const e of chain(inline)) expect(e.stack?.split('\n').length).toBeGreaterThan(1);
    const worker = await rejectionWith(queries.execute(ThrowCustom, { id: 3 }), 'HANDLER_FAILED');
    expect((worker.cause as Error).stack).toContain('handlers.js');
  });

  it('refuses a non-boolean errorStacks with INVALID_REGISTRATION naming it', () => {
    for (const Bus of [CommandBus, QueryBus]) {
      let err: unknown;
      try {
        new Bus({ errorStacks: 'no' as never });
      } catch (e) {
        err = e;
      }
      expect(isCqrsError(err, 'INVALID_REGISTRATION' satisfies ErrorCode)).toBe(true);
      expect((err as CqrsError).message).toContain('options.errorStacks');
    }
  });
});
