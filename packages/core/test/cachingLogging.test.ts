/**
 * caching() and logging() on real threads: worker queries served from the cache (hits never reach a thread),
 * coalescing, failures not cached, invalidation after a command, refusal on command buses, and real pino
 * lines for worker calls. Runs against the built package and fixtures (`node build.mjs --fast` first).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Call, Middleware, Next } from '@cqrs-pool/core';
import {
  CommandBus,
  caching,
  inWorker,
  isCqrsError,
  logging,
  metrics,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { figures } from './figures.js';
// Not yet re-exported by index.ts: imported from source. Their markers and errors use registry symbols,
// so they work with the built package's buses.
import type { LookupResult } from './fixtures/cachingHandlers.js';
import { Lookup, ReadNote, WriteNote } from './fixtures/cachingHandlers.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';
import { settleAll } from './settleAll.js';

const handlers = fixtureUrl('cachingHandlers');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cqrs-caching-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// A pool per test: handler figures live in the pool's shared region, keyed by kind and name, so a new bus on
// an old pool would start from the old counts.
let pool: WorkerPool;
const buses: (QueryBus | CommandBus)[] = [];

beforeEach(() => {
  pool = new WorkerPool({ threads: 2 });
});

afterEach(async () => {
  for (const bus of buses.splice(0)) await bus.close();
  await pool.close();
});

/** A query bus on the test's pool running the fixture's `Lookup` in a thread. */
async function lookupBus(middleware: ConstructorParameters<typeof QueryBus>[0] = {}): Promise<QueryBus> {
  const bus = new QueryBus({ pool, ...middleware });
  buses.push(bus);
  bus.registerHandler(Lookup, inWorker(handlers, 'lookup'));
  await bus.ready();
  return bus;
}

describe('caching() with worker handlers', () => {
  // `metrics()` inside the cache records only what reaches the handler: executions in threads.
  it('serves a repeated query from the cache: the second call never reaches a thread', async () => {
    const bus = await lookupBus({ middleware: [caching({ ttlMs: 60_000 }), metrics()] });
    const first = await bus.execute(Lookup, { id: 1 });
    const second = await bus.execute(Lookup, { id: 1 });
    expect(second).toBe(first);
    expect(figures(bus, 'Lookup').executions).toBe(1);
    const other = await bus.execute(Lookup, { id: 2 });
    expect(other.nonce).not.toBe(first.nonce);
    expect(figures(bus, 'Lookup').executions).toBe(2);
  });

  it('coalesces 50 identical concurrent queries into one execution in one thread', async () => {
    const bus = await lookupBus({ middleware: [caching({ ttlMs: 60_000 }), metrics()] });
    const outcomes = await settleAll(
      Array.from({ length: 50 }, () => bus.execute(Lookup, { id: 7, delayMs: 30 })),
    );
    const results = outcomes.map((o) => {
      if (o.status === 'rejected') throw o.reason;
      return o.value;
    });
    for (const result of results) expect(result).toBe(results[0] as LookupResult);
    expect(figures(bus, 'Lookup')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
  });

  it('counts hits as executions when the recording is outermost (the default)', async () => {
    const bus = await lookupBus({ middleware: [caching({ ttlMs: 60_000 })] });
    for (let i = 0; i < 5; i++) await bus.execute(Lookup, { id: 3 });
    expect(figures(bus, 'Lookup')).toMatchObject({ executions: 5, failures: 0, inFlight: 0 });
    expect(bus.getMetrics()).toMatchObject({ executions: 5, failures: 0 });
    // A hit outermost ends the call at once (no continuation): nothing is left pending.
    expect(bus.pending).toBe(0);
  });

  it.each([
    [
      'a middleware outside the cache wraps each answer',
      [(next: Next) => (call: Call) => next(call).then((v) => v)],
    ],
    ['metrics() placed outside the cache', [metrics()]],
  ])('counts hits once when %s', async (_what, outer) => {
    const bus = await lookupBus({ middleware: [...(outer as Middleware[]), caching({ ttlMs: 60_000 })] });
    for (let i = 0; i < 5; i++) await bus.execute(Lookup, { id: 4 });
    expect(figures(bus, 'Lookup')).toMatchObject({ executions: 5, failures: 0, inFlight: 0 });
    expect(bus.pending).toBe(0);
  });

  it('does not cache a failure: concurrent waiters all reject, and the next call runs again', async () => {
    const bus = await lookupBus({ middleware: [caching({ ttlMs: 60_000 }), metrics()] });
    const outcomes = await settleAll(
      Array.from({ length: 10 }, () => bus.execute(Lookup, { id: 9, fail: true, delayMs: 20 })),
    );
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect(isCqrsError((o as PromiseRejectedResult).reason, 'HANDLER_FAILED')).toBe(true);
    }
    expect(figures(bus, 'Lookup')).toMatchObject({ executions: 1, failures: 1 });
    await rejectionWith(bus.execute(Lookup, { id: 9, fail: true }), 'HANDLER_FAILED');
    expect(figures(bus, 'Lookup')).toMatchObject({ executions: 2, failures: 2 });
  });

  it('serves stale data until invalidated after a command changes it', async () => {
    const cache = caching({ ttlMs: 60_000 });
    const queries = new QueryBus({ pool, middleware: [cache] });
    const commands = new CommandBus({ pool });
    buses.push(queries, commands);
    queries.registerHandler(ReadNote, inWorker(handlers, 'readNote'));
    commands.registerHandler(WriteNote, inWorker(handlers, 'writeNote'));
    await Promise.all([queries.ready(), commands.ready()]);
    const path = join(dir, 'note.txt');
    const other = join(dir, 'other.txt');

    await commands.execute(WriteNote, { path, text: 'v1' });
    await commands.execute(WriteNote, { path: other, text: 'o1' });
    expect(await queries.execute(ReadNote, { path })).toBe('v1');
    expect(await queries.execute(ReadNote, { path: other })).toBe('o1');

    await commands.execute(WriteNote, { path, text: 'v2' });
    await commands.execute(WriteNote, { path: other, text: 'o2' });
    expect(await queries.execute(ReadNote, { path })).toBe('v1');

    cache.invalidate(ReadNote, { path });
    expect(await queries.execute(ReadNote, { path })).toBe('v2');
    expect(await queries.execute(ReadNote, { path: other })).toBe('o1');

    cache.invalidate('ReadNote');
    expect(await queries.execute(ReadNote, { path: other })).toBe('o2');
  });

  it('is refused by a CommandBus at construction and at registration', () => {
    let thrown: unknown;
    try {
      new CommandBus({ pool, middleware: [caching({ ttlMs: 1000 })] });
    } catch (err) {
      thrown = err;
    }
    expect(isCqrsError(thrown, 'INVALID_REGISTRATION')).toBe(true);
    expect((thrown as Error).message).toMatch(/caching\(\) applies to queries only/);

    const commands = new CommandBus({ pool });
    buses.push(commands);
    thrown = undefined;
    try {
      commands.registerHandler(WriteNote, inWorker(handlers, 'writeNote'), {
        middleware: [caching({ ttlMs: 1000 })],
      });
    } catch (err) {
      thrown = err;
    }
    expect(isCqrsError(thrown, 'INVALID_REGISTRATION')).toBe(true);
    expect(commands.getRegisteredCommands()).toEqual([]);
  });
});

describe('logging() with worker handlers and real pino', () => {
  function pinoLines(level: string) {
    const lines: Record<string, unknown>[] = [];
    const raw: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) {
          if (line === '') continue;
          raw.push(line);
          lines.push(JSON.parse(line));
        }
        callback();
      },
    });
    return { logger: pino({ level }, stream), lines, raw };
  }

  it('writes a line per call, ok and error, with correlationId and without the input', async () => {
    const { logger, lines, raw } = pinoLines('info');
    const bus = await lookupBus({ middleware: [logging(logger)] });
    await bus.execute(Lookup, { id: 1, secret: 'pa55-secret' }, { metadata: { correlationId: 'req-1' } });
    await rejectionWith(
      bus.execute(
        Lookup,
        { id: 2, fail: true, secret: 'pa55-secret' },
        { metadata: { correlationId: 'req-2' } },
      ),
      'HANDLER_FAILED',
    );
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      handler: 'Lookup',
      kind: 'query',
      outcome: 'ok',
      correlationId: 'req-1',
      durationMs: expect.any(Number),
      msg: expect.stringMatching(/^query Lookup ok in \d+\.\dms$/),
    });
    expect(lines[1]).toMatchObject({
      level: 50,
      handler: 'Lookup',
      outcome: 'error',
      code: 'HANDLER_FAILED',
      correlationId: 'req-2',
      // pino's err serializer reshapes the logged error: causes folded into message and stack.
      err: {
        code: 'HANDLER_FAILED',
        message: expect.stringContaining('Lookup failed: lookup 2 failed on purpose'),
      },
    });
    // The handler's stack, rebuilt across the thread boundary, is in the error line.
    const { stack } = (lines[1]?.err ?? {}) as { stack: string };
    expect(stack).toContain('caused by: Error: lookup 2 failed on purpose');
    expect(stack).toContain('cachingHandlers');
    for (const line of raw) expect(line).not.toContain('pa55-secret');
  });

  it('logs hits too when it sits outside the cache, and only executions when inside', async () => {
    const outside = pinoLines('info');
    const inside = pinoLines('info');
    const bus = await lookupBus({
      middleware: [logging(outside.logger), caching({ ttlMs: 60_000 }), logging(inside.logger)],
    });
    for (let i = 0; i < 3; i++) await bus.execute(Lookup, { id: 11 });
    expect(outside.lines).toHaveLength(3);
    expect(inside.lines).toHaveLength(1);
  });
});
