import { type CqrsError, inWorker, isCqrsError, timeout } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { figures } from './figures.js';
import {
  AwaitAbortAfter,
  BadItemAfter,
  Count,
  CountKeyed,
  CrashAfter,
  FailAfter,
  MixedRows,
  mixedItem,
  Rows,
  RowsArray,
  SpinAfter,
  StreamControl,
} from './fixtures/streamMessages.js';
import { newStreamControl, readAll, streamHandlers, upTo, usePool, waitForWord } from './streamSetup.js';

const setup = usePool();

function register(queries: ReturnType<typeof setup>['queries']): void {
  queries.registerHandler(Count, inWorker(streamHandlers, 'count'));
  queries.registerHandler(Rows, inWorker(streamHandlers, 'rows'));
  queries.registerHandler(RowsArray, inWorker(streamHandlers, 'rowsArray'));
  queries.registerHandler(FailAfter, inWorker(streamHandlers, 'failAfter'));
  queries.registerHandler(BadItemAfter, inWorker(streamHandlers, 'badItemAfter'));
  queries.registerHandler(CrashAfter, inWorker(streamHandlers, 'crashAfter'));
  queries.registerHandler(AwaitAbortAfter, inWorker(streamHandlers, 'awaitAbortAfter'));
  queries.registerHandler(SpinAfter, inWorker(streamHandlers, 'spinAfter'));
}

describe('streaming queries on pool threads', () => {
  it('deliver every item, in order', async () => {
    const { queries } = setup({ threads: 2 });
    register(queries);
    const { items, error } = await readAll(queries.stream(Count, { n: 20_000 }, { highWaterMark: 64 }));
    expect(error).toBeUndefined();
    expect(items).toEqual(upTo(20_000));
    const rows = await readAll(queries.stream(Rows, { n: 1000 }));
    expect(rows.items).toEqual(upTo(1000).map((id) => ({ id, name: 'row' })));
  });

  it('deliver rows whose shape changes, and items that are not rows, as structured clone would', async () => {
    // Rows of one shape cross a chunk at a time as columns (itemColumns.ts); anything else as it is.
    const { queries } = setup({ threads: 1 });
    queries.registerHandler(MixedRows, inWorker(streamHandlers, 'mixedRows'));
    const { items, error } = await readAll(queries.stream(MixedRows, { n: 2000 }, { highWaterMark: 300 }));
    expect(error).toBeUndefined();
    const expected = Array.from({ length: 2000 }, (_, i) => structuredClone(mixedItem(i)));
    expect(items).toEqual(expected);
    for (const [i, item] of items.entries()) {
      if (typeof item !== 'object' || item === null || item instanceof Date) continue;
      expect(Object.getPrototypeOf(item)).toBe(Object.prototype);
      expect(Object.keys(item)).toEqual(Object.keys(expected[i] as object));
    }
  });

  it('deliver items while the generator still runs', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const stream = queries.stream(AwaitAbortAfter, { n: 1, control });
    // The generator yields one item and then waits for ever: the item comes all the same.
    await expect(stream.next()).resolves.toEqual({ value: 0, done: false });
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(0);
    await stream.return();
  });

  it('never let the producer get more than highWaterMark items ahead of a slow consumer', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const n = 2000;
    const highWaterMark = 32;
    let consumed = 0;
    let mostAhead = 0;
    for await (const item of queries.stream(Count, { n, control }, { highWaterMark })) {
      expect(item).toBe(consumed);
      consumed++;
      // At each checkpoint the consumer lets the producer run as far as it can: it waits until the producer
      // has gone at least half a mark past it, which its credits always allow.
      if (consumed % highWaterMark === 0) {
        await waitForWord(control, StreamControl.produced, Math.min(n, consumed + highWaterMark / 2));
      }
      mostAhead = Math.max(mostAhead, Atomics.load(control, StreamControl.produced) - consumed);
    }
    expect(consumed).toBe(n);
    expect(mostAhead).toBeGreaterThanOrEqual(highWaterMark / 2);
    expect(mostAhead).toBeLessThanOrEqual(highWaterMark);
  });

  it('stop the generator on break: its finally has run in the thread, which is free again', async () => {
    const { queries } = setup({ threads: 1 });
    register(queries);
    const control = newStreamControl();
    let read = 0;
    for await (const _ of queries.stream(Count, { n: 1_000_000, control }, { highWaterMark: 16 })) {
      if (++read === 10) break;
    }
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(1);
    expect(Atomics.load(control, StreamControl.produced)).toBeLessThanOrEqual(10 + 16);
    // The only thread runs the next call.
    await expect(readAll(queries.stream(Count, { n: 3 }))).resolves.toEqual({
      items: [0, 1, 2],
      error: undefined,
    });
    expect(figures(queries, 'Count')).toMatchObject({ executions: 2, failures: 0, inFlight: 0 });
  });

  it('tell the generator through ctx.signal when the consumer stops', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const stream = queries.stream(AwaitAbortAfter, { n: 2, control });
    await stream.next();
    await stream.next();
    // Stopped once it awaits its signal (stopped at its yield, on a slow thread, it would never await it).
    await waitForWord(control, StreamControl.awaiting, 1);
    await expect(stream.return()).resolves.toEqual({ value: undefined, done: true });
    expect(Atomics.load(control, StreamControl.sawAbort)).toBe(1);
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(1);
  });

  it('fail with ABORTED at once when the signal aborts, and stop the generator', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const controller = new AbortController();
    const stream = queries.stream(Count, { n: 1_000_000, control }, { signal: controller.signal });
    for (let i = 0; i < 5; i++) await expect(stream.next()).resolves.toEqual({ value: i, done: false });
    controller.abort();
    await expect(stream.next()).rejects.toSatisfy((err: unknown) => isCqrsError(err, 'ABORTED'));
    await expect(stream.next()).resolves.toEqual({ value: undefined, done: true });
    await waitForWord(control, StreamControl.finallyRan, 1);
  });

  it('end with TIMEOUT under timeout(): the whole stream is bounded, the items before it still come', async () => {
    const { queries } = setup();
    queries.registerHandler(Count, inWorker(streamHandlers, 'count'), { middleware: [timeout(1000)] });
    // Loaded before the clock starts: the deadline is the stream's, not the module's first import.
    await queries.ready();
    const control = newStreamControl();
    const stream = queries.stream(Count, { n: 1_000_000, control }, { highWaterMark: 8 });
    await expect(stream.next()).resolves.toEqual({ value: 0, done: false });
    // The consumer stalls: the producer waits for credits until the deadline stops it.
    await waitForWord(control, StreamControl.finallyRan, 1);
    const rest = await readAll(stream);
    expect(rest.items).toEqual(upTo(rest.items.length).map((i) => i + 1));
    expect(rest.items.length).toBeLessThanOrEqual(8);
    expect(isCqrsError(rest.error, 'TIMEOUT')).toBe(true);
  });

  it('replace the thread of a generator that ignores the stop, after the grace period', async () => {
    const { queries, pool } = setup({ threads: 1, cancelGraceMs: 50 });
    register(queries);
    const control = newStreamControl();
    const stream = queries.stream(SpinAfter, { n: 1, control });
    await expect(stream.next()).resolves.toEqual({ value: 0, done: false });
    // Stopped only once it spins (stopped at its yield, on a slow thread, its `finally` would run).
    await waitForWord(control, StreamControl.spinning, 1);
    // It spins for ever without yielding: the stop cannot reach it, so its thread is terminated.
    await expect(stream.return()).resolves.toEqual({ value: undefined, done: true });
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(0);
    await expect(readAll(queries.stream(Count, { n: 2 }))).resolves.toEqual({
      items: [0, 1],
      error: undefined,
    });
    expect(pool.threads).toBe(1);
  });

  it('throw HANDLER_FAILED after the items before the error, its cause rebuilt', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const { items, error } = await readAll(queries.stream(FailAfter, { n: 5, control }));
    expect(items).toEqual(upTo(5));
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    const cause = (error as CqrsError).cause as Record<string, unknown>;
    expect(cause).toBeInstanceOf(Error);
    expect(cause).toMatchObject({
      name: 'ExportError',
      message: 'export broke at row 5',
      code: 'E_EXPORT',
      row: 5,
    });
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(1);
    expect(figures(queries, 'FailAfter')).toMatchObject({
      executions: 1,
      failures: 1,
      failuresByCode: { HANDLER_FAILED: 1 },
    });
  });

  it('fail with NOT_CLONEABLE at an item that cannot cross, after the items before it', async () => {
    const { queries } = setup();
    register(queries);
    const control = newStreamControl();
    const { items, error } = await readAll(queries.stream(BadItemAfter, { n: 3, control }));
    expect(items).toEqual(upTo(3));
    expect(isCqrsError(error, 'NOT_CLONEABLE')).toBe(true);
    // The generator was ended at the bad item: its finally ran, nothing after it was produced.
    expect(Atomics.load(control, StreamControl.finallyRan)).toBe(1);
    expect(Atomics.load(control, StreamControl.produced)).toBe(3);
  });

  it('fail with WORKER_CRASHED after the items that came when the thread dies, and go on on a new thread', async () => {
    const { queries } = setup({ threads: 1 });
    register(queries);
    const { items, error } = await readAll(queries.stream(CrashAfter, { n: 5 }));
    expect(items).toEqual(upTo(5));
    expect(isCqrsError(error, 'WORKER_CRASHED')).toBe(true);
    await expect(readAll(queries.stream(Count, { n: 2 }))).resolves.toEqual({
      items: [0, 1],
      error: undefined,
    });
  });

  it('are refused with INVALID_REGISTRATION by execute, and a plain query by stream', async () => {
    const { queries } = setup();
    register(queries);
    await expect(queries.execute(Count as never, { n: 1 })).rejects.toSatisfy((err: unknown) =>
      isCqrsError(err, 'INVALID_REGISTRATION'),
    );
    await expect(queries.execute('Count', { n: 1 })).rejects.toSatisfy((err: unknown) =>
      isCqrsError(err, 'INVALID_REGISTRATION'),
    );
    const byDefinition = await readAll(queries.stream(RowsArray as never, { n: 1 }));
    expect(isCqrsError(byDefinition.error, 'INVALID_REGISTRATION')).toBe(true);
    const byName = await readAll(queries.stream('RowsArray', { n: 1 }));
    expect(isCqrsError(byName.error, 'INVALID_REGISTRATION')).toBe(true);
    const unknown = await readAll(queries.stream('Nothing', {}));
    expect(isCqrsError(unknown.error, 'HANDLER_NOT_FOUND')).toBe(true);
    const badOptions = await readAll(queries.stream(Count, { n: 1 }, { highWaterMark: 0 }));
    expect(isCqrsError(badOptions.error, 'VALIDATION')).toBe(true);
  });

  it('count streams in the metrics: executions, items and the time to the first item', async () => {
    const { queries } = setup({ threads: 2 });
    register(queries);
    await readAll(queries.stream(Count, { n: 100 }));
    await readAll(queries.stream(Count, { n: 50 }));
    for await (const _ of queries.stream(Count, { n: 10_000 }, { highWaterMark: 4 })) break;
    const count = figures(queries, 'Count');
    expect(count).toMatchObject({ executions: 3, failures: 0, inFlight: 0 });
    // The stopped stream delivered its first item, and at most its mark more.
    expect(count.stream?.items).toBeGreaterThanOrEqual(151);
    expect(count.stream?.items).toBeLessThanOrEqual(155);
    expect(count.stream?.firstItem.count).toBe(3);
    expect(count.stream?.firstItem.mean).toBeGreaterThan(0);
    expect(count.latency.max).toBeGreaterThan(0);
  });

  it('with an orderingKey, never overlap streams of one key: each holds its key until its generator ended', async () => {
    const { queries } = setup({ threads: 2 });
    queries.registerHandler(CountKeyed, inWorker(streamHandlers, 'countKeyed'), {
      orderingKey: (input) => input.key,
    });
    // Both threads started and warm (the module loaded in each): streams of two keys at once, twice.
    const warm = newStreamControl();
    for (let i = 0; i < 2; i++) {
      await Promise.all(
        ['x', 'y'].map((key) => readAll(queries.stream(CountKeyed, { key, n: 20, control: warm }))),
      );
    }
    const control = newStreamControl();
    const other = newStreamControl();
    const runs = await Promise.all([
      readAll(queries.stream(CountKeyed, { key: 'a', n: 200, control }, { highWaterMark: 4 })),
      readAll(queries.stream(CountKeyed, { key: 'a', n: 200, control }, { highWaterMark: 4 })),
      readAll(queries.stream(CountKeyed, { key: 'a', n: 200, control }, { highWaterMark: 4 })),
      readAll(queries.stream(CountKeyed, { key: 'b', n: 200, control: other }, { highWaterMark: 4 })),
    ]);
    for (const run of runs) expect(run).toEqual({ items: upTo(200), error: undefined });
    expect(Atomics.load(control, StreamControl.mostActive)).toBe(1);
    expect(Atomics.load(control, StreamControl.produced)).toBe(600);
  });

  it('keep close() waiting until an open stream has ended', async () => {
    const { queries } = setup();
    register(queries);
    const stream = queries.stream(Count, { n: 100 }, { highWaterMark: 4 });
    await stream.next();
    let closed = false;
    const closing = queries.close().then(() => {
      closed = true;
    });
    const rest = await readAll(stream);
    expect(rest.items).toEqual(upTo(99).map((i) => i + 1));
    await closing;
    expect(closed).toBe(true);
    const after = await readAll(queries.stream(Count, { n: 1 }));
    expect(isCqrsError(after.error, 'CLOSED')).toBe(true);
  });
});
