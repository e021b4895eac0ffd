import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CqrsRuntime, EventFailure } from '@cqrs-pool/core';
import {
  createFromConfig,
  defineEvent,
  defineQuery,
  inWorker,
  isCqrsError,
  loadConfig,
  parseConfig,
} from '@cqrs-pool/core';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const configs = new URL('../configs/', import.meta.url);
const Lookup = defineQuery('Lookup', { input: z.object({ id: z.number().int() }), output: z.number() });
const Slow = defineQuery('Slow', { input: z.object({}) });

let runtime: CqrsRuntime | undefined;
afterEach(async () => {
  await runtime?.close();
  runtime = undefined;
});

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines };
}

describe('createFromConfig', () => {
  it('builds a working pool and buses from the shipped test config', async () => {
    runtime = createFromConfig(await loadConfig(new URL('test.json', configs)));
    const { commands, queries, pool } = runtime;
    expect(pool.threads).toBe(1);
    commands.registerHandler(Square, inWorker(fixtureUrl('handlers'), 'square'));
    queries.registerHandler(Lookup, ({ id }) => id * 10);
    await commands.ready();
    await expect(commands.execute(Square, { n: 7 })).resolves.toBe(49);
    await expect(queries.execute(Lookup, { id: 4 })).resolves.toBe(40);
    // validation is on in the test config: the handler never sees a bad input
    await rejectionWith(queries.execute('Lookup', { id: 1.5 }), 'VALIDATION');
    expect(commands.getMetrics().handlers.Square?.executions).toBe(1);
  });

  it('applies the bus timeout from the file', async () => {
    runtime = createFromConfig({ pool: { threads: 1 }, query_bus: { timeout_ms: 50, enable_retry: false } });
    let handlerDone = false;
    runtime.queries.registerHandler(
      Slow,
      () =>
        new Promise((resolve) =>
          setTimeout(() => {
            handlerDone = true;
            resolve(undefined);
          }, 1000),
        ),
    );
    await rejectionWith(runtime.queries.execute(Slow, {}), 'TIMEOUT');
    // The 50 ms from the file, not the handler's 1 s, ended the call (timers fire in order of their due time).
    expect(handlerDone).toBe(false);
  });

  it('builds from a YAML file with durations: the bus timeout and the cache ttl apply', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cqrs-config-'));
    const file = join(dir, 'service.yaml');
    await writeFile(
      file,
      [
        'pool:',
        '  threads: 1',
        'query_bus:',
        '  timeout: 50ms',
        '  enable_retry: false',
        'middleware:',
        '  caching:',
        '    ttl: 10m',
        '',
      ].join('\n'),
    );
    runtime = createFromConfig(await loadConfig(file));
    expect(runtime.config.query_bus.timeout_ms).toBe(50);
    // A query that never settles by itself: only the timeout from the file can end it.
    runtime.queries.registerHandler(Slow, () => new Promise(() => {}));
    await rejectionWith(runtime.queries.execute(Slow, {}), 'TIMEOUT');
    let runs = 0;
    runtime.queries.registerHandler(Lookup, ({ id }) => {
      runs++;
      return id;
    });
    await runtime.queries.execute(Lookup, { id: 3 });
    await runtime.queries.execute(Lookup, { id: 3 });
    expect(runs).toBe(1);
  });

  it('caches queries and exposes the cache for invalidation', async () => {
    runtime = createFromConfig({ pool: { threads: 1 }, middleware: { caching: { ttl_ms: 60_000 } } });
    let runs = 0;
    runtime.queries.registerHandler(Lookup, ({ id }) => {
      runs++;
      return id;
    });
    await runtime.queries.execute(Lookup, { id: 1 });
    await runtime.queries.execute(Lookup, { id: 1 });
    expect(runs).toBe(1);
    runtime.cache?.invalidate(Lookup, { id: 1 });
    await runtime.queries.execute(Lookup, { id: 1 });
    expect(runs).toBe(2);
  });

  it('opens the circuit after the configured failures', async () => {
    runtime = createFromConfig({
      pool: { threads: 1 },
      query_bus: { enable_retry: false },
      middleware: { circuit_breaker: { enabled: true, failure_threshold: 2, reset_after_ms: 60_000 } },
    });
    runtime.queries.registerHandler(Lookup, () => {
      throw new Error('down');
    });
    await rejectionWith(runtime.queries.execute(Lookup, { id: 1 }), 'HANDLER_FAILED');
    await rejectionWith(runtime.queries.execute(Lookup, { id: 1 }), 'HANDLER_FAILED');
    await rejectionWith(runtime.queries.execute(Lookup, { id: 1 }), 'CIRCUIT_OPEN');
    expect(runtime.queries.getMetrics().handlers.Lookup?.circuit).toBe('open');
  });

  it('logs through the given logger, without the input', async () => {
    const { logger, lines } = capture();
    runtime = createFromConfig({ pool: { threads: 1 } }, { logger });
    runtime.queries.registerHandler(Lookup, ({ id }) => id);
    // A number no duration or timestamp will contain by chance.
    await runtime.queries.execute(Lookup, { id: 987_654_321 }, { metadata: { correlationId: 'c-9' } });
    const line = lines().find((l) => l.handler === 'Lookup');
    expect(line).toMatchObject({ outcome: 'ok', correlationId: 'c-9' });
    expect(line).not.toHaveProperty('input');
    expect(JSON.stringify(line)).not.toContain('987654321');
  });

  it('builds the event bus from the event_bus section: retry, timeout and strategy per subscriber', async () => {
    const Happened = defineEvent('Happened', { payload: z.object({ n: z.number() }) });
    const deadLetters: EventFailure[] = [];
    const { logger, lines } = capture();
    runtime = createFromConfig(
      {
        pool: { threads: 1 },
        event_bus: { enable_retry: true, timeout: '50ms', strategy: 'sequential' },
        middleware: { retry: { max_retries: 1, base_delay_ms: 1, max_delay_ms: 1 } },
      },
      { logger, onFailure: (f) => void deadLetters.push(f) },
    );
    expect(runtime.config.event_bus).toMatchObject({ timeout_ms: 50, strategy: 'sequential' });
    const order: string[] = [];
    let attempts = 0;
    runtime.events.subscribe(Happened, 'flaky', () => {
      order.push('flaky');
      attempts++;
      throw new Error('down');
    });
    runtime.events.subscribe(Happened, 'stuck', () => {
      order.push('stuck');
      return new Promise(() => {});
    });
    runtime.events.subscribe(Happened, 'fine', () => void order.push('fine'));
    const report = await runtime.events.publish(Happened, { n: 1 });
    expect(report.delivered).toEqual(['fine']);
    expect(report.failed.map((f) => [f.subscriber, f.error.code])).toEqual([
      ['flaky', 'HANDLER_FAILED'],
      ['stuck', 'TIMEOUT'],
    ]);
    // Sequential: each subscriber ran after the one before had settled, retries included.
    expect(order).toEqual(['flaky', 'flaky', 'stuck', 'stuck', 'fine']);
    expect(attempts).toBe(2);
    expect(deadLetters.map((f) => f.subscriber)).toEqual(['flaky', 'stuck']);
    expect(lines().find((l) => l.subscriber === 'fine')).toMatchObject({
      handler: 'Happened',
      kind: 'event',
    });
    await rejectionWith(runtime.events.publish(Happened, { n: 'x' } as never), 'VALIDATION');
  });

  it('defaults the event_bus section, and refuses fields it does not have', () => {
    expect(parseConfig({}).event_bus).toEqual({
      enable_metrics: true,
      enable_logging: true,
      enable_rate_limit: true,
      enable_circuit_breaker: true,
      enable_retry: false,
      strategy: 'parallel',
    });
    expect(() => parseConfig({ event_bus: { enable_validation: true } })).toThrow(
      /event_bus.*enable_validation/,
    );
    expect(() => parseConfig({ event_bus: { strategy: 'random' } })).toThrow(/event_bus\.strategy/);
  });

  it('refuses a bad config, naming the field, before it starts any thread', () => {
    let err: unknown;
    try {
      createFromConfig({ middleware: { retry: { max_retries: -1 } } });
    } catch (e) {
      err = e;
    }
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect((err as Error).message).toContain('middleware.retry.max_retries');
  });
});
