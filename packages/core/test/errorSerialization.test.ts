/**
 * A worker handler that throws an error whose properties fight back (getters that throw, proxies, names that
 * cannot be printed): the caller gets HANDLER_FAILED with what could be read of the error, the thread lives
 * on, and the metrics count each call once. Runs against the built package and fixtures.
 */
import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { hostileErrorKinds, hostileErrors } from './fixtures/hostileErrors.js';
import { ThrowHostile, WhichThread } from './fixtures/hostileMessages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('hostileHandlers');
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('a worker handler throwing an error that resists serialization', () => {
  it('fails with HANDLER_FAILED, keeps its thread, and is counted exactly', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool, metrics: true });
    const queries = new QueryBus({ pool });
    commands.registerHandler(ThrowHostile, inWorker(handlers, 'throwHostile'));
    queries.registerHandler(WhichThread, inWorker(handlers, 'whichThread'));
    const thread = await queries.execute(WhichThread, {});

    for (const kind of hostileErrorKinds) {
      const err = await rejectionWith(commands.execute(ThrowHostile, { kind }), 'HANDLER_FAILED');
      expect(err.handler, kind).toBe('ThrowHostile');
      expect(err.cause, kind).toBeDefined();
      // The same thread answers: the error did not take it down.
      expect(await queries.execute(WhichThread, {}), kind).toBe(thread);
    }

    const rebuilt = await rejectionWith(
      commands.execute(ThrowHostile, { kind: 'throwingGetter' }),
      'HANDLER_FAILED',
    );
    expect(rebuilt.message).toBe('ThrowHostile failed: getter');
    expect(rebuilt.cause).toMatchObject({
      name: 'Error',
      message: 'getter',
      detail: '[unreadable: Error: boom]',
    });
    const unprintable = await rejectionWith(
      commands.execute(ThrowHostile, { kind: 'unprintableMessage' }),
      'HANDLER_FAILED',
    );
    expect(unprintable.message).toBe('ThrowHostile failed: [unreadable: Error: boom]');

    const calls = hostileErrorKinds.length + 2;
    expect(commands.getMetrics().handlers.ThrowHostile).toMatchObject({
      executions: calls,
      failures: calls,
      inFlight: 0,
      failuresByCode: { HANDLER_FAILED: calls },
    });
    expect(commands.getMetrics()).toMatchObject({ executions: calls, failures: calls, inFlight: 0 });
    expect(pool.threads).toBe(1);
    await commands.close();
    await queries.close();
  });
});

describe('an inline handler throwing an error that resists reading', () => {
  it('fails with HANDLER_FAILED for every kind, and the call is counted and ends', async () => {
    const commands = new CommandBus();
    commands.registerHandler(ThrowHostile, ({ kind }) => {
      throw hostileErrors[kind]();
    });
    for (const kind of hostileErrorKinds) {
      const err = await rejectionWith(commands.execute(ThrowHostile, { kind }), 'HANDLER_FAILED');
      expect(err.handler, kind).toBe('ThrowHostile');
    }
    expect(commands.getMetrics().handlers.ThrowHostile).toMatchObject({
      executions: hostileErrorKinds.length,
      failures: hostileErrorKinds.length,
      inFlight: 0,
    });
    expect(commands.pending).toBe(0);
  });
});
