import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Describe, Echo, Fail, Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('handlers');
const bad = fixtureUrl('badHandlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('ready()', () => {
  it('resolves when every worker handler loads', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await expect(commands.ready()).resolves.toBeUndefined();
  });

  it('rejects with INVALID_REGISTRATION naming a missing module, a missing export and an export of another message', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    const queries = new QueryBus({ pool });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    commands.registerHandler(Fail, inWorker(fixtureUrl('doesNotExist'), 'fail'));
    queries.registerHandler(Echo, inWorker(bad, 'notAHandler'));
    queries.registerHandler(Describe, inWorker(bad, 'squareHandler'));

    const commandErr = await rejectionWith(commands.ready(), 'INVALID_REGISTRATION');
    expect(commandErr.message).toContain('Fail');
    expect(commandErr.message).toContain('doesNotExist');
    expect(commandErr.message).not.toContain('Square');

    const queryErr = await rejectionWith(queries.ready(), 'INVALID_REGISTRATION');
    expect(queryErr.message).toContain('Echo');
    expect(queryErr.message).toContain('notAHandler');
    expect(queryErr.message).toContain('Describe');
    expect(queryErr.message).toMatch(/handles 'Square'/);

    // The good handler still works; calls to the bad ones fail with the same code.
    await expect(commands.execute(Square, { n: 3 })).resolves.toBe(9);
    const failCall = await rejectionWith(commands.execute(Fail, { message: 'x' }), 'INVALID_REGISTRATION');
    expect(failCall.handler).toBe('Fail');
    await rejectionWith(queries.execute(Echo, 1), 'INVALID_REGISTRATION');
    await rejectionWith(queries.execute(Describe, {}), 'INVALID_REGISTRATION');
  });

  it('finds an export of another message even after that export ran under its own name on the same thread', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    const queries = new QueryBus({ pool });
    commands.registerHandler(Square, inWorker(bad, 'squareHandler'));
    queries.registerHandler(Describe, inWorker(bad, 'squareHandler'));
    await expect(commands.execute(Square, { n: 4 })).resolves.toBe(16);
    await expect(commands.ready()).resolves.toBeUndefined();
    const err = await rejectionWith(queries.ready(), 'INVALID_REGISTRATION');
    expect(err.message).toContain('Describe');
    await rejectionWith(queries.execute(Describe, {}), 'INVALID_REGISTRATION');
  });

  it('a call to a bad worker handler fails with INVALID_REGISTRATION even without ready()', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    commands.registerHandler(Fail, inWorker(bad, 'notAHandler'));
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    const err = await rejectionWith(commands.execute(Fail, { message: 'x' }), 'INVALID_REGISTRATION');
    expect(err.message).toContain('notAHandler');
    await expect(commands.execute(Square, { n: 5 })).resolves.toBe(25);
  });
});
