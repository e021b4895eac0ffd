/**
 * Streaming queries over NATS: `remoteStream()` on the calling node, `serve()` on the serving one, a real
 * nats-server between them. Order, credits (the server never far ahead of a slow reader), stopping, errors
 * after the items before them, a server or a client that goes away.
 */
import type { CqrsError } from '@cqrs-pool/core';
import { defineQuery, defineStreamQuery, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { RemoteClient, remote, remoteStream, serve } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('stream.test.ts');
const prefix = `s${process.pid}`;

const Numbers = defineStreamQuery('Numbers', {
  input: z.object({ n: z.number().int().min(0), failAt: z.number().optional() }),
  item: z.number(),
});
const Context = defineStreamQuery('StreamContext', {
  input: z.object({}),
  item: z.custom<Record<string, string>>(),
});
const Plain = defineQuery('PlainQuery', { input: z.object({}), output: z.number() });
const Unserved = defineStreamQuery('UnservedStream', { input: z.object({}), item: z.number() });

/** Reads a stream to its end within `ms`: its items and what it threw. */
async function readAll<T>(stream: AsyncIterable<T>, ms = 10_000): Promise<{ items: T[]; error: unknown }> {
  const items: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const reading = (async () => {
    try {
      for await (const item of stream) items.push(item);
      return undefined;
    } catch (err) {
      return err;
    }
  })();
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream still open after ${ms} ms`)), ms);
  });
  try {
    return { items, error: await Promise.race([reading, guard]) };
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(nats === undefined)('remoteStream() and serve() over a real nats-server', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  const served = new QueryBus();
  const seen = { produced: 0, finallyRuns: 0 };
  let finallyRan: () => void = () => {};

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    served.registerHandler(Numbers, async function* ({ n, failAt }) {
      try {
        for (let i = 0; i < n; i++) {
          if (i === failAt) throw Object.assign(new Error(`failed at ${i}`), { code: 'E_AT', row: i });
          seen.produced++;
          yield i;
        }
      } finally {
        seen.finallyRuns++;
        finallyRan();
      }
    });
    served.registerHandler(Context, async function* (_input, ctx) {
      yield { ...ctx.metadata };
    });
    served.registerHandler(Plain, () => 1);
    serve(serverConn, served, { prefix });
    await serverConn.flush();
  });

  afterAll(async () => {
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  function caller(options: Parameters<typeof remoteStream>[1] = {}): QueryBus {
    const queries = new QueryBus();
    const handler = remoteStream(clientConn, { prefix, ...options });
    for (const def of [Numbers, Context, Unserved]) queries.registerHandler(def, handler);
    queries.registerHandler(Plain, remote(clientConn, { prefix }));
    return queries;
  }

  /** Resolves when the serving generator's finally has run (next time). */
  function nextFinally(): Promise<void> {
    return new Promise((resolve) => {
      finallyRan = resolve;
    });
  }

  it('delivers every item in order, with the caller metadata', async () => {
    const queries = caller({ window: 64 });
    const { items, error } = await readAll(queries.stream(Numbers, { n: 5000 }));
    expect(error).toBeUndefined();
    expect(items).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    const context = await readAll(queries.stream(Context, {}, { metadata: { correlationId: 'c-9' } }));
    expect(context.items).toEqual([{ correlationId: 'c-9' }]);
  });

  it('keeps the serving generator within its window and the two buffers of a slow reader', async () => {
    const window = 16;
    const highWaterMark = 8;
    const queries = caller({ window });
    const start = seen.produced;
    let read = 0;
    let mostAhead = 0;
    for await (const item of queries.stream(Numbers, { n: 400 }, { highWaterMark })) {
      expect(item).toBe(read);
      read++;
      // Let the server run as far as its credits let it: a round trip to the server and back.
      if (read % 16 === 0) await clientConn.flush();
      mostAhead = Math.max(mostAhead, seen.produced - start - read);
    }
    expect(read).toBe(400);
    // The server's buffer (its window), the items in transit (the window), the caller's own buffer.
    expect(mostAhead).toBeLessThanOrEqual(window + window + highWaterMark);
    expect(mostAhead).toBeGreaterThanOrEqual(highWaterMark);
  });

  it('stops the serving generator when the reader breaks: its finally runs there', async () => {
    const queries = caller({ window: 32 });
    const ended = nextFinally();
    const start = seen.produced;
    let read = 0;
    for await (const _ of queries.stream(Numbers, { n: 1_000_000 })) if (++read === 10) break;
    await ended;
    expect(seen.produced - start).toBeLessThan(1000);
  });

  it('fails after the items before the error with the serving bus error rebuilt', async () => {
    const queries = caller();
    const { items, error } = await readAll(queries.stream(Numbers, { n: 10, failAt: 3 }));
    expect(items).toEqual([0, 1, 2]);
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect((error as CqrsError).message).toContain('failed at 3');
  });

  it('refuses a plain query streamed, a stream executed, and fails a stream nobody serves with UNAVAILABLE', async () => {
    const queries = new QueryBus();
    queries.registerHandler(Plain, remoteStream(clientConn, { prefix }) as never);
    queries.registerHandler(Numbers, remote(clientConn, { prefix }) as never);
    const plain = await readAll(queries.stream('PlainQuery', {}));
    expect(isCqrsError(plain.error, 'INVALID_REGISTRATION')).toBe(true);
    await expect(queries.execute('Numbers', { n: 1 })).rejects.toSatisfy((err: unknown) =>
      isCqrsError(err, 'INVALID_REGISTRATION'),
    );
    const unserved = await readAll(caller().stream(Unserved, {}));
    expect(isCqrsError(unserved.error, 'UNAVAILABLE')).toBe(true);
  });

  it('ends with TIMEOUT when the server goes silent, and the server stops a stream whose caller went', async () => {
    // A server on a connection of its own, closed mid-stream.
    const lonely = await connect({ servers: nats?.url ?? '' });
    const bus = new QueryBus();
    const Slow = defineStreamQuery('SlowStream', { input: z.object({}), item: z.number() });
    let release: () => void = () => {};
    bus.registerHandler(Slow, async function* () {
      yield 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      yield 2;
    });
    serve(lonely, bus, { prefix });
    await lonely.flush();
    const client = new RemoteClient(clientConn, { prefix, timeoutMs: 300 });
    const queries = new QueryBus();
    queries.registerHandler(Slow, remoteStream(client));
    const stream = queries.stream(Slow, {});
    await expect(stream.next()).resolves.toEqual({ value: 1, done: false });
    await lonely.close();
    release();
    const rest = await readAll(stream);
    expect(isCqrsError(rest.error, 'TIMEOUT')).toBe(true);

    // The other way round: the caller's connection goes; the server stops the stream after the idle bound.
    const leaving = await connect({ servers: nats?.url ?? '' });
    const ended = nextFinally();
    const away = new QueryBus();
    away.registerHandler(Numbers, remoteStream(new RemoteClient(leaving, { prefix, timeoutMs: 300 })));
    const abandoned = away.stream(Numbers, { n: 1_000_000 }, { highWaterMark: 4 });
    await abandoned.next();
    await leaving.close();
    await ended;
  });
  it("counts an open stream against its client's maxInFlight, beside its calls", async () => {
    const client = new RemoteClient(clientConn, { prefix, maxInFlight: 1 });
    const queries = new QueryBus();
    queries.registerHandler(Numbers, remoteStream(client));
    queries.registerHandler(Plain, remote(client));
    const open = queries.stream(Numbers, { n: 1_000_000 }, { highWaterMark: 4 });
    await expect(open.next()).resolves.toEqual({ value: 0, done: false });
    expect(client.inFlight).toBe(1);
    const second = await readAll(queries.stream(Numbers, { n: 1 }));
    expect(isCqrsError(second.error, 'OVERLOADED')).toBe(true);
    await expect(queries.execute(Plain, {})).rejects.toSatisfy((err: unknown) =>
      isCqrsError(err, 'OVERLOADED'),
    );
    // Ended by its reader: the room is free again.
    const ended = nextFinally();
    await open.return?.();
    await ended;
    expect(client.inFlight).toBe(0);
    expect(await queries.execute(Plain, {})).toBe(1);
    expect((await readAll(queries.stream(Numbers, { n: 3 }))).items).toEqual([0, 1, 2]);
    expect(client.inFlight).toBe(0);
  });

  it('ends the open streams of a client that closes with CLOSED, and refuses new ones', async () => {
    const client = new RemoteClient(clientConn, { prefix });
    const queries = new QueryBus();
    queries.registerHandler(Numbers, remoteStream(client));
    const open = queries.stream(Numbers, { n: 1_000_000 }, { highWaterMark: 4 });
    await expect(open.next()).resolves.toEqual({ value: 0, done: false });
    const ended = nextFinally();
    client.close();
    const rest = await readAll(open);
    expect(isCqrsError(rest.error, 'CLOSED')).toBe(true);
    // The serving node was told to stop.
    await ended;
    const after = await readAll(queries.stream(Numbers, { n: 1 }));
    expect(isCqrsError(after.error, 'CLOSED')).toBe(true);
    expect(client.inFlight).toBe(0);
  });

  it('fails an open stream with UNAVAILABLE as soon as its connection closes, not at its timeout', async () => {
    const leaving = await connect({ servers: nats?.url ?? '' });
    const queries = new QueryBus();
    // A timeout far beyond the test's: only the connection's close can end the stream in time.
    queries.registerHandler(Numbers, remoteStream(new RemoteClient(leaving, { prefix, timeoutMs: 600_000 })));
    const open = queries.stream(Numbers, { n: 1_000_000 }, { highWaterMark: 4 });
    await expect(open.next()).resolves.toEqual({ value: 0, done: false });
    await leaving.close();
    const rest = await readAll(open);
    expect(isCqrsError(rest.error, 'UNAVAILABLE')).toBe(true);
    expect((rest.error as CqrsError).message).toContain('connection is closed');
  });
});
