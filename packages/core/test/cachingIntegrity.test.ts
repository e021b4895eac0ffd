/**
 * A cached query answers exactly the input its key describes. The key is taken when the call enters the
 * cache, so the handler must see that input — not the caller's object as it is when the call finally leaves
 * for a thread — and two inputs a thread can tell apart must not share a key.
 */
import { CommandBus, caching, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newControl, releaseAll, waitForStarts } from './control.js';
import { Block, Echo } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function setup() {
  pool = new WorkerPool({ threads: 1 });
  const commands = new CommandBus({ pool });
  const queries = new QueryBus({ pool, middleware: [caching({ ttlMs: 60_000 })] });
  commands.registerHandler(Block, inWorker(handlers, 'block'));
  queries.registerHandler(Echo, inWorker(handlers, 'echo'));
  return { commands, queries };
}

describe('caching() keeps what a handler sees equal to what its key describes', () => {
  it('an input the caller changes while its call waits for a thread does not poison the cache', async () => {
    const { commands, queries } = setup();
    const control = newControl();
    const blocked = commands.execute(Block, { control });
    await waitForStarts(control);
    // The only thread is busy: this call waits in the pool while its caller changes the object.
    const input = { a: 1 };
    const first = queries.execute(Echo, input);
    input.a = 2;
    releaseAll(control);
    await blocked;
    expect(await first).toMatchObject({ input: { a: 1 } });
    expect(await queries.execute(Echo, { a: 1 })).toMatchObject({ input: { a: 1 } });
    expect(await queries.execute(Echo, { a: 2 })).toMatchObject({ input: { a: 2 } });
  });

  it('an array with an extra own property does not share the plain array entry', async () => {
    const { queries } = setup();
    const flagged = await queries.execute(Echo, Object.assign([1, 2], { admin: true }));
    expect((flagged as { input: { admin?: boolean } }).input.admin).toBe(true);
    const plain = (await queries.execute(Echo, [1, 2])) as { input: unknown[] & { admin?: boolean } };
    expect(plain.input).toEqual([1, 2]);
    expect(plain.input.admin).toBeUndefined();
    // Both are cached, each under its own key: a hit hands back the very object stored.
    expect(await queries.execute(Echo, [1, 2])).toBe(plain);
    expect(await queries.execute(Echo, Object.assign([1, 2], { admin: true }))).toBe(flagged);
  });
});
