// Type-level guarantees of the public API. `npx tsc -p tsconfig.json` checks this file: every
// `@ts-expect-error` line must really be an error, so a loosened type fails the type check. The calls that must
// not compile sit in functions that never run; the rest runs as an ordinary test.
import type { HandlerContext, InputOf, ResultOf } from '@cqrs-pool/core';
import { CommandBus, defineCommand, defineQuery, defineStreamQuery, handle, QueryBus } from '@cqrs-pool/core';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

interface User {
  id: number;
  username: string;
}

const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int(), username: z.string(), tags: z.array(z.string()).default([]) }),
  output: z.object({ id: z.number(), username: z.string() }),
});
const GetUser = defineQuery('GetUser', {
  input: z.object({ userId: z.number() }),
  output: z.custom<User | null>(),
});
const Untyped = defineCommand('Untyped', { input: z.object({}) });
const ExportUsers = defineStreamQuery('ExportUsers', {
  input: z.object({ from: z.number().default(0) }),
  item: z.custom<User>(),
});

describe('types', () => {
  it('infer the handler input from the definition (after parsing) and the execute result from its output', async () => {
    const commands = new CommandBus();
    const queries = new QueryBus();
    commands.registerHandler(CreateUser, (input, ctx) => {
      expectTypeOf(input).toEqualTypeOf<{ userId: number; username: string; tags: string[] }>();
      expectTypeOf(ctx).toEqualTypeOf<HandlerContext>();
      return { id: input.userId, username: input.username };
    });
    queries.registerHandler(GetUser, async (input) => ({ id: input.userId, username: 'u' }));
    commands.registerHandler(Untyped, () => 'anything');

    // The caller may leave out a field that has a default.
    const created = await commands.execute(CreateUser, { userId: 1, username: 'ann', tags: ['a'] });
    expectTypeOf(created).toEqualTypeOf<{ id: number; username: string }>();
    const user = await queries.execute(GetUser, { userId: 1 });
    expectTypeOf(user).toEqualTypeOf<User | null>();
    expectTypeOf(commands.execute(Untyped, {})).resolves.toBeUnknown();
    expectTypeOf(commands.execute('CreateUser', { anything: true })).resolves.toBeUnknown();

    expectTypeOf<InputOf<typeof CreateUser>>().toEqualTypeOf<{
      userId: number;
      username: string;
      tags?: string[] | undefined;
    }>();
    expectTypeOf<ResultOf<typeof GetUser>>().toEqualTypeOf<User | null>();
    expectTypeOf(CreateUser.kind).toEqualTypeOf<'command'>();
    expectTypeOf(GetUser.name).toEqualTypeOf<'GetUser'>();
  });

  it('keeps execute by name untyped, and types it by definition whichever overload comes first', () => {
    const commands = new CommandBus();
    const byName = (name: string) => commands.execute(name, { anything: true });
    expectTypeOf(byName).returns.resolves.toBeUnknown();
    const byDefinition = () => commands.execute(CreateUser, { userId: 1, username: 'ann' });
    expectTypeOf(byDefinition).returns.resolves.toEqualTypeOf<{ id: number; username: string }>();
  });

  it('types the input of a worker handler made with handle()', () => {
    const worker = handle(GetUser, (input) => {
      expectTypeOf(input).toEqualTypeOf<{ userId: number }>();
      return null;
    });
    expectTypeOf(worker.name).toEqualTypeOf<'GetUser'>();
  });
});

describe('stream types', () => {
  it('type a stream handler input and its items, and the items a consumer reads', async () => {
    const queries = new QueryBus();
    queries.registerHandler(ExportUsers, async function* (input) {
      expectTypeOf(input).toEqualTypeOf<{ from: number }>();
      yield { id: input.from, username: 'u' };
    });
    const worker = handle(ExportUsers, async function* (input, ctx) {
      expectTypeOf(input).toEqualTypeOf<{ from: number }>();
      for await (const user of ctx.queries.stream(ExportUsers, {})) yield user;
    });
    expectTypeOf(worker.name).toEqualTypeOf<'ExportUsers'>();
    for await (const user of queries.stream(ExportUsers, {})) expectTypeOf(user).toEqualTypeOf<User>();
    for await (const item of queries.stream('ExportUsers', {})) expectTypeOf(item).toBeUnknown();
  });
});

/** Never called: each marked line must fail to compile. */
export async function mustNotCompile(commands: CommandBus, queries: QueryBus): Promise<void> {
  // @ts-expect-error a wrong input type: userId must be a number
  await commands.execute(CreateUser, { userId: '1', username: 'ann' });
  // @ts-expect-error a missing required input field
  await commands.execute(CreateUser, { userId: 1 });
  // @ts-expect-error an unknown definition field does not replace a required one
  await queries.execute(GetUser, { id: 1 });

  // @ts-expect-error a wrong result type: execute resolves to { id, username }
  const wrongResult: string = await commands.execute(CreateUser, { userId: 1, username: 'ann' });
  // @ts-expect-error the result of GetUser may be null
  const notNull: User = await queries.execute(GetUser, { userId: 1 });

  // @ts-expect-error a handler returning the wrong result type
  commands.registerHandler(CreateUser, () => ({ id: 'one', username: 'ann' }));
  // @ts-expect-error a handler reading a field the input does not have
  commands.registerHandler(CreateUser, (input) => ({ id: input.email, username: input.username }));

  // @ts-expect-error an async handler returning the wrong result type
  commands.registerHandler(CreateUser, async (input) => ({ id: input.userId, username: input.userId }));
  // @ts-expect-error a handler leaving out a field of the result
  commands.registerHandler(CreateUser, (input) => ({ id: input.userId }));
  // A worker handler made with handle(), checked the same way:
  // @ts-expect-error the wrong type for a field of the result
  handle(CreateUser, (input) => ({ id: input.userId, username: 2 }));
  // @ts-expect-error a result without a required field
  handle(CreateUser, async (input) => ({ id: input.userId, name: input.username }));
  // @ts-expect-error reading a field the input does not have
  handle(GetUser, (input) => ({ id: input.id, username: 'u' }));

  // @ts-expect-error a query definition cannot be registered on a CommandBus
  commands.registerHandler(GetUser, () => null);
  // @ts-expect-error a command definition cannot be registered on a QueryBus
  queries.registerHandler(CreateUser, () => ({ id: 1, username: 'ann' }));
  // @ts-expect-error nor executed on the other bus
  await commands.execute(GetUser, { userId: 1 });
  const createUserWorker = handle(CreateUser, () => ({ id: 1, username: 'ann' }));
  // @ts-expect-error a handle() value for another message
  commands.registerHandler(Untyped, createUserWorker);

  // @ts-expect-error a stream handler yielding the wrong item type
  queries.registerHandler(ExportUsers, async function* () {
    yield { id: 'one', username: 'u' };
  });
  handle(ExportUsers, async function* (input) {
    // @ts-expect-error a worker stream handler reading a field the input does not have
    yield { id: input.to, username: 'u' };
  });
  // @ts-expect-error a plain query cannot be streamed by definition
  queries.stream(GetUser, { userId: 1 });
  // @ts-expect-error a wrong stream input type
  queries.stream(ExportUsers, { from: 'zero' });

  void wrongResult;
  void notNull;
}
