/**
 * Streaming queries through middleware: what applies at the start
 * (validation, rate limit, breaker, logging, metrics), what bounds the whole stream (timeout), what passes
 * streams through (caching), and when retry may run a stream again (never after an item was delivered).
 */
import type { Logger } from '@cqrs-pool/core';
import {
  type CqrsError,
  caching,
  circuitBreaker,
  defineStreamQuery,
  isCqrsError,
  logging,
  QueryBus,
  rateLimit,
  retry,
  timeout,
  validation,
} from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { figures } from './figures.js';
import { Numbers, numbers, readAll, upTo } from './streamSetup.js';

describe('streaming queries through middleware', () => {
  it('validation() checks the input at the start: VALIDATION, the generator never runs', async () => {
    const queries = new QueryBus({ middleware: [validation()] });
    const { seen, handler } = numbers();
    queries.registerHandler(Numbers, handler);
    const { error } = await readAll(queries.stream(Numbers, { n: -1 }));
    expect(isCqrsError(error, 'VALIDATION')).toBe(true);
    expect(seen.runs).toBe(0);
    expect(figures(queries, 'Numbers')).toMatchObject({ executions: 1, failures: 1 });
  });

  it('validation({ output: true }) checks each item: VALIDATION after the good ones, the generator stopped', async () => {
    const queries = new QueryBus({ middleware: [validation({ output: true })] });
    const Small = defineStreamQuery('Small', { input: z.object({}), item: z.number().max(2) });
    let finallyRan = false;
    queries.registerHandler(Small, async function* () {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finallyRan = true;
      }
    });
    const { items, error } = await readAll(queries.stream(Small, {}));
    expect(items).toEqual([0, 1, 2]);
    expect(isCqrsError(error, 'VALIDATION')).toBe(true);
    expect((error as CqrsError).message).toContain('invalid item');
    expect(finallyRan).toBe(true);
    expect(figures(queries, 'Small')).toMatchObject({ executions: 1, failures: 1 });
  });

  it('rateLimit() and circuitBreaker() admit or refuse a stream at its start', async () => {
    const queries = new QueryBus({
      middleware: [
        circuitBreaker({ failureThreshold: 1, resetAfterMs: 60_000 }),
        rateLimit({ limit: 2, windowMs: 60_000 }),
      ],
    });
    queries.registerHandler(Numbers, numbers().handler);
    expect((await readAll(queries.stream(Numbers, { n: 2 }))).items).toEqual([0, 1]);
    const failed = await readAll(queries.stream(Numbers, { n: 5, failAt: 1 }));
    expect(isCqrsError(failed.error, 'HANDLER_FAILED')).toBe(true);
    // The failure (mid-stream) opened the breaker.
    expect(isCqrsError((await readAll(queries.stream(Numbers, { n: 2 }))).error, 'CIRCUIT_OPEN')).toBe(true);
    const limited = new QueryBus({ middleware: [rateLimit({ limit: 1, windowMs: 60_000 })] });
    limited.registerHandler(Numbers, numbers().handler);
    expect((await readAll(limited.stream(Numbers, { n: 1 }))).items).toEqual([0]);
    expect(isCqrsError((await readAll(limited.stream(Numbers, { n: 1 }))).error, 'RATE_LIMITED')).toBe(true);
  });

  it('logging() writes one line per stream, when it ends, with its whole duration', async () => {
    const lines: { level: string; obj: Record<string, unknown> }[] = [];
    const logger: Logger = {
      info: (obj: object) => lines.push({ level: 'info', obj: obj as Record<string, unknown> }),
      warn: (obj: object) => lines.push({ level: 'warn', obj: obj as Record<string, unknown> }),
      error: (obj: object) => lines.push({ level: 'error', obj: obj as Record<string, unknown> }),
    };
    const queries = new QueryBus({ middleware: [logging(logger)] });
    queries.registerHandler(Numbers, numbers().handler);
    const stream = queries.stream(Numbers, { n: 3 });
    await stream.next();
    expect(lines).toEqual([]);
    await readAll(stream);
    await readAll(queries.stream(Numbers, { n: 3, failAt: 1 }));
    expect(lines.map((l) => [l.level, l.obj.outcome, l.obj.code])).toEqual([
      ['info', 'ok', undefined],
      ['error', 'error', 'HANDLER_FAILED'],
    ]);
  });

  it('caching() passes streams through: identical streams each run their generator', async () => {
    const queries = new QueryBus({ middleware: [caching({ ttlMs: 60_000 })] });
    const { seen, handler } = numbers();
    queries.registerHandler(Numbers, handler);
    const [a, b] = await Promise.all([
      readAll(queries.stream(Numbers, { n: 3 })),
      readAll(queries.stream(Numbers, { n: 3 })),
    ]);
    expect(a.items).toEqual([0, 1, 2]);
    expect(b.items).toEqual([0, 1, 2]);
    await readAll(queries.stream(Numbers, { n: 3 }));
    expect(seen.runs).toBe(3);
  });

  it('retry() runs a stream again while no item was delivered, and never after one', async () => {
    const queries = new QueryBus({ middleware: [retry({ maxRetries: 3, baseDelayMs: 1, maxDelayMs: 1 })] });
    let attempts = 0;
    queries.registerHandler(Numbers, async function* ({ n, failAt }) {
      attempts++;
      // Fails before its first item on the first two attempts.
      if (attempts <= 2) throw new Error('not yet');
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw new Error('mid-stream');
        yield i;
      }
    });
    await expect(readAll(queries.stream(Numbers, { n: 3 }))).resolves.toEqual({
      items: [0, 1, 2],
      error: undefined,
    });
    expect(attempts).toBe(3);
    const { items, error } = await readAll(queries.stream(Numbers, { n: 5, failAt: 2 }));
    // Failed after two items: not replayed, so no item comes twice.
    expect(items).toEqual([0, 1]);
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect(attempts).toBe(4);
  });

  it('timeout() bounds the whole stream of an inline generator, not its start', async () => {
    const queries = new QueryBus({ middleware: [timeout(100)] });
    let ran: () => void = () => {};
    const finallyRan = new Promise<void>((resolve) => {
      ran = resolve;
    });
    queries.registerHandler(Numbers, async function* () {
      try {
        for (let i = 0; ; i++) {
          yield i;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        ran();
      }
    });
    const { items, error } = await readAll(queries.stream(Numbers, { n: 0 }));
    expect(isCqrsError(error, 'TIMEOUT')).toBe(true);
    expect(items.length).toBeGreaterThan(0);
    expect(items).toEqual(upTo(items.length));
    // Stopped at its next yield: its finally runs.
    await finallyRan;
  });
});
