import { describe, expect, it } from 'vitest';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import { QueryStream } from './QueryStream.js';
import type { StreamProducer } from './StreamSink.js';

/** A stream whose call is driven by hand: `call` is what `begin` got, settled by `resolve` / `reject`. */
function manual(highWaterMark = 8, signal?: AbortSignal) {
  const grants: number[] = [];
  let stops = 0;
  const call = { started: 0, credits: -1, resolve: (_: unknown) => {}, reject: (_: unknown) => {} };
  const producer: StreamProducer = {
    grant: (n) => grants.push(n),
    stop: () => stops++,
  };
  const stream = new QueryStream<number>(
    (sink) =>
      new Promise((resolve, reject) => {
        call.started++;
        call.credits = sink.connect(producer);
        call.resolve = resolve;
        call.reject = reject;
      }),
    highWaterMark,
    signal,
  );
  return { stream, call, grants, stops: () => stops };
}

async function drain(stream: AsyncIterable<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

describe('QueryStream', () => {
  it('starts the call at the first next(), not before', async () => {
    const { stream, call } = manual();
    expect(call.started).toBe(0);
    const first = stream.next();
    expect(call.started).toBe(1);
    stream.push([1]);
    await expect(first).resolves.toEqual({ value: 1, done: false });
  });

  it('hands out items in the order they were pushed, across chunks and single items, then done', async () => {
    const { stream, call } = manual();
    const reading = drain(stream);
    stream.push([1, 2]);
    stream.pushOne(3);
    stream.pushOne(4);
    stream.push([5]);
    call.resolve(undefined);
    await expect(reading).resolves.toEqual([1, 2, 3, 4, 5]);
    expect(stream.delivered).toBe(5);
  });

  it('gives its producer the high-water mark as credits, then hands them back in batches as items are taken', async () => {
    const { stream, call, grants } = manual(8);
    const first = stream.next();
    expect(call.credits).toBe(8);
    stream.push([0, 1, 2, 3, 4, 5, 6, 7]);
    await first;
    for (let i = 1; i < 8; i++) await stream.next();
    // A quarter of the mark at a time, and what is owed when the buffer runs dry.
    expect(grants).toEqual([2, 2, 2, 2]);
    expect(grants.reduce((a, b) => a + b, 0)).toBe(8);
  });

  it('throws the call error after the items pushed before it', async () => {
    const { stream, call } = manual();
    const items: number[] = [];
    const reading = (async () => {
      for await (const item of stream) items.push(item);
    })();
    stream.push([1, 2, 3]);
    call.reject(new CqrsError('HANDLER_FAILED', 'boom'));
    const err = await reading.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    expect(items).toEqual([1, 2, 3]);
    // The error is thrown once; the iteration is then over.
    await expect(stream.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it("drops what is buffered when the caller's own signal aborts: ABORTED comes at once", async () => {
    const controller = new AbortController();
    const { stream, call } = manual(8, controller.signal);
    await Promise.all([stream.next(), stream.push([1, 2, 3, 4])]);
    controller.abort();
    call.reject(new CqrsError('ABORTED', 'aborted'));
    await expect(stream.next()).rejects.toSatisfy((e: unknown) => isCqrsError(e, 'ABORTED'));
  });

  it('return() tells the producer to stop, waits for the call to end, and drops the buffer', async () => {
    const { stream, call, stops } = manual();
    await Promise.all([stream.next(), stream.push([1, 2, 3])]);
    let returned = false;
    const stopping = stream.return().then((result) => {
      returned = true;
      return result;
    });
    expect(stops()).toBe(1);
    expect(stream.stopped).toBe(true);
    await Promise.resolve();
    expect(returned).toBe(false);
    call.resolve(undefined);
    await expect(stopping).resolves.toEqual({ value: undefined, done: true });
    await expect(stream.next()).resolves.toEqual({ value: undefined, done: true });
    // Late items are ignored.
    stream.push([9]);
    await expect(stream.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('return() before the first next() starts nothing', async () => {
    const { stream, call } = manual();
    await expect(stream.return()).resolves.toEqual({ value: undefined, done: true });
    await expect(stream.next()).resolves.toEqual({ value: undefined, done: true });
    expect(call.started).toBe(0);
  });

  it('serves concurrent next() calls in order, and each waiting reader gets the end', async () => {
    const { stream, call } = manual();
    const a = stream.next();
    const b = stream.next();
    const c = stream.next();
    stream.push([1, 2]);
    call.resolve(undefined);
    await expect(Promise.all([a, b, c])).resolves.toEqual([
      { value: 1, done: false },
      { value: 2, done: false },
      { value: undefined, done: true },
    ]);
  });

  it('takeSome hands over buffered items in chunks, counting them as taken', async () => {
    const { stream, call, grants } = manual(8);
    const first = stream.takeSome(3);
    stream.push([1, 2, 3, 4, 5]);
    await expect(first).resolves.toEqual([1, 2, 3]);
    await expect(stream.takeSome(10)).resolves.toEqual([4, 5]);
    expect(grants).toEqual([3, 2]);
    call.resolve(undefined);
    await expect(stream.takeSome(10)).resolves.toBeUndefined();
  });
});
