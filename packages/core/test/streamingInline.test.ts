/**
 * Streaming queries with inline (main-thread) generators, and streams read by handlers: inline through
 * `ctx.queries.stream`, and from pool threads over comlink.
 */
import { type CqrsError, defineStreamQuery, inWorker, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { figures } from './figures.js';
import { Count, FailAfter, StreamControl, SumStream } from './fixtures/streamMessages.js';
import {
  Numbers,
  newStreamControl,
  numbers,
  readAll,
  streamHandlers,
  upTo,
  usePool,
  waitForWord,
} from './streamSetup.js';

describe('inline streaming queries', () => {
  it('deliver the generator items in order; a plain generator works too', async () => {
    const queries = new QueryBus();
    queries.registerHandler(Numbers, numbers().handler);
    const Plain = defineStreamQuery('Plain', { input: z.object({}), item: z.string() });
    queries.registerHandler(Plain, function* () {
      yield 'a';
      yield 'b';
    });
    await expect(readAll(queries.stream(Numbers, { n: 1000 }))).resolves.toEqual({
      items: upTo(1000),
      error: undefined,
    });
    await expect(readAll(queries.stream(Plain, {}))).resolves.toEqual({
      items: ['a', 'b'],
      error: undefined,
    });
  });

  it('pause the generator at highWaterMark items ahead of the consumer', async () => {
    const queries = new QueryBus();
    const { seen, handler } = numbers();
    queries.registerHandler(Numbers, handler);
    const stream = queries.stream(Numbers, { n: 100 }, { highWaterMark: 5 });
    await stream.next();
    // Whatever the generator could do without the consumer, it has done by now: many turns of the loop.
    for (let i = 0; i < 100; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(seen.produced).toBeLessThanOrEqual(1 + 5);
    expect(seen.produced).toBeGreaterThanOrEqual(5);
    await stream.return();
    expect(seen.finallyRan).toBe(1);
  });

  it('run the finally on break, and count the stream as a success', async () => {
    const queries = new QueryBus();
    const { seen, handler } = numbers();
    queries.registerHandler(Numbers, handler);
    for await (const item of queries.stream(Numbers, { n: 1_000_000 })) if (item === 3) break;
    expect(seen.finallyRan).toBe(1);
    expect(figures(queries, 'Numbers')).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
    expect(figures(queries, 'Numbers').stream?.items).toBeGreaterThanOrEqual(4);
  });

  it('tell a generator that awaits something through ctx.signal when the consumer stops', async () => {
    const queries = new QueryBus();
    const seen: string[] = [];
    queries.registerHandler(Numbers, async function* (_input, ctx) {
      try {
        yield 1;
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        seen.push(`aborted: ${String((ctx.signal.reason as Error).message)} ${ctx.isCancelled()}`);
      } finally {
        seen.push('finally');
      }
    });
    for await (const _ of queries.stream(Numbers, { n: 1 })) break;
    expect(seen).toEqual(['aborted: Numbers: the consumer stopped reading true', 'finally']);
  });

  it('throw HANDLER_FAILED with the generator error as cause, after the items before it', async () => {
    const queries = new QueryBus();
    queries.registerHandler(Numbers, numbers().handler);
    const { items, error } = await readAll(queries.stream(Numbers, { n: 10, failAt: 4 }));
    expect(items).toEqual(upTo(4));
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect((error as CqrsError).cause).toMatchObject({ message: 'failed at 4', code: 'E_AT' });
  });

  it('fail with HANDLER_FAILED when the handler returns no iterable', async () => {
    const queries = new QueryBus();
    queries.registerHandler(Numbers, (async () => [1, 2]) as never);
    const { error } = await readAll(queries.stream(Numbers, { n: 1 }));
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect(((error as CqrsError).cause as Error).message).toContain('async iterable');
  });

  it('stop at the signal with ABORTED, the generator ended at its yield', async () => {
    const queries = new QueryBus();
    const { seen, handler, ended } = numbers();
    queries.registerHandler(Numbers, handler);
    const controller = new AbortController();
    const stream = queries.stream(Numbers, { n: 1_000_000 }, { signal: controller.signal });
    await stream.next();
    controller.abort();
    await expect(stream.next()).rejects.toSatisfy((err: unknown) => isCqrsError(err, 'ABORTED'));
    await ended;
    expect(seen.finallyRan).toBe(1);
  });

  it('are read by a handler through ctx.queries.stream, with the caller metadata', async () => {
    const queries = new QueryBus();
    const metadataSeen: unknown[] = [];
    queries.registerHandler(Numbers, async function* ({ n }, ctx) {
      metadataSeen.push(ctx.metadata);
      for (let i = 0; i < n; i++) yield i;
    });
    const Sum = defineStreamQuery('Sum', { input: z.object({ n: z.number() }), item: z.number() });
    queries.registerHandler(Sum, async function* ({ n }, ctx) {
      let sum = 0;
      for await (const item of ctx.queries.stream(Numbers, { n }, { metadata: { hop: 'inner' } }))
        sum += item;
      yield sum;
    });
    const { items } = await readAll(queries.stream(Sum, { n: 100 }, { metadata: { correlationId: 'c-1' } }));
    expect(items).toEqual([4950]);
    expect(metadataSeen).toEqual([{ correlationId: 'c-1', hop: 'inner' }]);
  });
});

describe('nested streams in pool threads', () => {
  const setup = usePool();

  it('a worker handler reads a stream through ctx.queries.stream, to its end or until it breaks', async () => {
    const { queries } = setup({ threads: 1 });
    queries.registerHandler(Count, inWorker(streamHandlers, 'count'));
    queries.registerHandler(SumStream, inWorker(streamHandlers, 'sumStream'));
    const bounded = { signal: AbortSignal.timeout(10_000) };
    await expect(queries.execute(SumStream, { n: 10_000, highWaterMark: 64 }, bounded)).resolves.toEqual({
      sum: 49_995_000,
      count: 10_000,
    });
    const control = newStreamControl();
    await expect(
      queries.execute(SumStream, { n: 1_000_000, take: 5, control, highWaterMark: 16 }, bounded),
    ).resolves.toEqual({
      sum: 10,
      count: 5,
    });
    // Its break stopped the inner generator, whose own thread is the same one.
    await waitForWord(control, StreamControl.finallyRan, 1);
    expect(Atomics.load(control, StreamControl.produced)).toBeLessThanOrEqual(5 + 16 + 16);
  });

  it('an inner stream error reaches the worker handler as a CqrsError', async () => {
    const { queries } = setup({ threads: 1 });
    queries.registerHandler(FailAfter, inWorker(streamHandlers, 'failAfter'));
    queries.registerHandler(SumStream, inWorker(streamHandlers, 'sumStream'));
    const result = await queries.execute(
      SumStream,
      { target: 'FailAfter', n: 3 },
      { signal: AbortSignal.timeout(10_000) },
    );
    expect(result).toMatchObject({ sum: 3, count: 3, error: { code: 'HANDLER_FAILED', cause: 'E_EXPORT' } });
  });

  it('an inline generator feeds a worker handler', async () => {
    const { queries } = setup({ threads: 1 });
    queries.registerHandler(SumStream, inWorker(streamHandlers, 'sumStream'));
    queries.registerHandler(Numbers, numbers().handler);
    await expect(
      queries.execute(SumStream, { target: 'Numbers', n: 100 }, { signal: AbortSignal.timeout(10_000) }),
    ).resolves.toEqual({ sum: 4950, count: 100 });
  });
});
