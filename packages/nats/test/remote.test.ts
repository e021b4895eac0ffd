import type { Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  defineCommand,
  defineQuery,
  isCqrsError,
  QueryBus,
  retry,
  timeout,
  validation,
} from '@cqrs-pool/core';
import { RemoteClient, remote, serve, taggedJson } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect, headers } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('remote.test.ts');
// Own subjects: other test files may share the NATS server (CI's NATS_URL) at the same time.
const prefix = `t${process.pid}`;

const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int().min(1), username: z.string().min(3) }),
  output: z.object({ id: z.number(), username: z.string() }),
});
const Explode = defineCommand('Explode', { input: z.object({ why: z.string() }) });
const Echo = defineQuery('Echo', { input: z.unknown(), output: z.unknown() });
const Context = defineQuery('Context', { input: z.object({}), output: z.custom<Record<string, string>>() });
const Slow = defineQuery('Slow', { input: z.object({ ms: z.number() }), output: z.string() });
const Unserved = defineQuery('Unserved', { input: z.object({}) });

/** How long a call may hang before the test fails: generous, it only turns a hang into a failure. */
const HANG_MS = 15_000;

/** Settles within `ms` or fails the test: a hang must show as a failure, not a stalled run. */
async function within<T>(ms: number, pending: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([pending, guard]);
  } finally {
    clearTimeout(timer);
  }
}

async function failure(pending: Promise<unknown>, ms = HANG_MS): Promise<unknown> {
  return within(
    ms,
    pending.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (err: unknown) => err,
    ),
  );
}

describe.skipIf(nats === undefined)('remote() and serve() over a real nats-server', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  const served = { commands: new CommandBus({ middleware: [validation()] }), queries: new QueryBus() };
  const slowStarted: number[] = [];
  const slowAborted: number[] = [];
  /** The `ms` of Slow calls that ran to their end (not aborted). */
  const slowFinished: number[] = [];
  let servers: ReturnType<typeof serve>[] = [];

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    served.commands.registerHandler(CreateUser, (input) => ({ id: input.userId, username: input.username }));
    served.commands.registerHandler(Explode, (input) => {
      throw Object.assign(new Error(`exploded: ${input.why}`), { code: 'E_BOOM', detail: { at: 3 } });
    });
    served.queries.registerHandler(Echo, (input) => input);
    served.queries.registerHandler(Context, (_input, ctx) => ({ ...ctx.metadata }));
    served.queries.registerHandler(Slow, async (input, ctx) => {
      slowStarted.push(input.ms);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          slowFinished.push(input.ms);
          resolve();
        }, input.ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          slowAborted.push(input.ms);
          resolve();
        });
      });
      return `slept ${input.ms}`;
    });
    servers = [serve(serverConn, served.commands, { prefix }), serve(serverConn, served.queries, { prefix })];
    await serverConn.flush();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  function callerBuses(middleware: Middleware[] = [], client?: RemoteClient) {
    const commands = new CommandBus({ middleware });
    const queries = new QueryBus({ middleware });
    const handler = client === undefined ? remote(clientConn, { prefix }) : remote(client);
    for (const def of [CreateUser, Explode]) commands.registerHandler(def, handler);
    for (const def of [Echo, Context, Slow, Unserved]) queries.registerHandler(def, handler);
    return { commands, queries };
  }

  it('defaults to the cqrs prefix', () => {
    const server = serve(serverConn, new QueryBus());
    expect(server.subjects).toEqual([]);
    const bus = new QueryBus();
    bus.registerHandler(Echo, () => 1);
    const one = serve(serverConn, bus);
    expect(one.subjects).toEqual(['cqrs.qry.Echo']);
    return one.stop();
  });

  it('serves every registered handler on <prefix>.cmd.<Name> / <prefix>.qry.<Name>', () => {
    expect(servers[0]?.subjects).toEqual([`${prefix}.cmd.CreateUser`, `${prefix}.cmd.Explode`]);
    expect(servers[1]?.subjects).toEqual([
      `${prefix}.qry.Echo`,
      `${prefix}.qry.Context`,
      `${prefix}.qry.Slow`,
    ]);
  });

  it('returns the remote result, and counts the call in the caller’s metrics', async () => {
    const { commands } = callerBuses();
    const user = await within(HANG_MS, commands.execute(CreateUser, { userId: 7, username: 'ada' }));
    expect(user).toEqual({ id: 7, username: 'ada' });
    await failure(commands.execute(Explode, { why: 'counted' }));
    expect(commands.getMetrics().handlers.CreateUser).toMatchObject({
      executions: 1,
      failures: 0,
      inFlight: 0,
    });
    expect(commands.getMetrics().handlers.Explode).toMatchObject({ executions: 1, failures: 1 });
  });

  it('rebuilds the serving bus’s VALIDATION as a VALIDATION with its message and issues', async () => {
    const { commands } = callerBuses();
    const err = await failure(commands.execute(CreateUser, { userId: 0, username: 'x' }));
    expect(isCqrsError(err, 'VALIDATION')).toBe(true);
    expect((err as Error).message).toMatch(/CreateUser/);
    expect((err as { issues?: unknown[] }).issues?.length).toBe(2);
  });

  it('rebuilds HANDLER_FAILED with the handler’s error (name, message, code, fields) as cause', async () => {
    const { commands } = callerBuses();
    const err = await failure(commands.execute(Explode, { why: 'on purpose' }));
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    expect((err as Error).message).toBe('Explode failed: exploded: on purpose');
    expect((err as Error).cause).toMatchObject({
      message: 'exploded: on purpose',
      code: 'E_BOOM',
      detail: { at: 3 },
    });
  });

  it('carries metadata, trace context included, and the trace headers on the NATS message', async () => {
    const { queries } = callerBuses();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const metadata = { correlationId: 'c-1', user: 'line\nbreak é', traceparent, tracestate: 'k=v' };
    expect(await within(HANG_MS, queries.execute(Context, {}, { metadata }))).toEqual(metadata);
    // A caller that is not remote(): only the standard W3C headers, which the server folds into metadata.
    const h = headers();
    h.set('traceparent', traceparent);
    const reply = await clientConn.request(`${prefix}.qry.Context`, taggedJson.encode({}), {
      timeout: HANG_MS,
      headers: h,
    });
    expect(taggedJson.decode(reply.data)).toEqual({ traceparent });
  });

  it('round-trips Date, BigInt, binary, undefined in arrays, NaN, Map and Set', async () => {
    const { queries } = callerBuses();
    const value = {
      at: new Date(1_700_000_000_123),
      big: 2n ** 70n,
      bytes: new Uint8Array([0, 1, 255]),
      buffer: Buffer.from('hi'),
      list: [1, undefined, 'x', null],
      odd: [Number.NaN, -0, Number.POSITIVE_INFINITY],
      map: new Map([['k', new Set([1, 2])]]),
      $t: 'looks like a tag',
    };
    expect(await within(HANG_MS, queries.execute(Echo, value))).toStrictEqual(value);
  });

  it('refuses an input the codec cannot encode with NOT_CLONEABLE, sending nothing', async () => {
    const { queries } = callerBuses();
    const err = await failure(queries.execute(Echo, { fn: () => 1 }));
    expect(isCqrsError(err, 'NOT_CLONEABLE')).toBe(true);
  });

  it('maps no responders to UNAVAILABLE at once', async () => {
    const { queries } = callerBuses();
    // The client's own timeout is 30 s: an answer within the hang bound is the no-responders reply.
    const err = await failure(queries.execute(Unserved, {}));
    expect(isCqrsError(err, 'UNAVAILABLE')).toBe(true);
    expect(queries.getMetrics().handlers.Unserved).toMatchObject({ executions: 1, failures: 1 });
  });

  it('a timeout() on the caller abandons the request with TIMEOUT, and the server is told to stop', async () => {
    const { queries } = callerBuses([timeout(150)]);
    const err = await failure(queries.execute(Slow, { ms: 3_000 }));
    expect(isCqrsError(err, 'TIMEOUT')).toBe(true);
    // Released before the remote handler's 3 s were up: the caller did not wait for its answer.
    expect(slowFinished).not.toContain(3_000);
  });

  it('the client’s own timeoutMs ends a request nobody answers with TIMEOUT, and the server aborts it too', async () => {
    const client = new RemoteClient(clientConn, { prefix, timeoutMs: 200 });
    const { queries } = callerBuses([], client);
    const err = await failure(queries.execute(Slow, { ms: 4_001 }));
    expect(isCqrsError(err, 'TIMEOUT')).toBe(true);
    expect(client.inFlight).toBe(0);
    // The server got the caller's deadline in a header and aborted the handler's signal.
    await within(
      HANG_MS,
      (async () => {
        while (!slowAborted.includes(4_001)) await new Promise((r) => setTimeout(r, 20));
      })(),
    );
  });

  it('a deadline that passes on the server answers TIMEOUT (not ABORTED), and the handler is told to stop', async () => {
    const timeouts = () => served.queries.getMetrics().handlers.Slow?.failuresByCode?.TIMEOUT ?? 0;
    const before = timeouts();
    const h = headers();
    h.set('Cqrs-Timeout-Ms', '150');
    // The raw caller waits longer than the deadline it sent: it reads what the server answers at the deadline.
    const reply = await clientConn.request(`${prefix}.qry.Slow`, taggedJson.encode({ ms: 4_002 }), {
      timeout: 5_000,
      headers: h,
    });
    expect(reply.headers?.get('Cqrs-Status')).toBe('error');
    expect(taggedJson.decode(reply.data)).toMatchObject({
      t: 'error',
      code: 'TIMEOUT',
      message: "Slow: the caller's deadline (150 ms) passed",
    });
    expect(slowAborted).toContain(4_002);
    expect(timeouts()).toBe(before + 1);
  });

  it('the caller’s abort settles the call with ABORTED promptly and frees its in-flight slot', async () => {
    const client = new RemoteClient(clientConn, { prefix });
    const { queries } = callerBuses([], client);
    const controller = new AbortController();
    const pending = queries.execute(Slow, { ms: 3_001 }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user left')), 100);
    const err = await failure(pending);
    expect(isCqrsError(err, 'ABORTED')).toBe(true);
    // Released before the remote handler's 3 s were up: the caller did not wait for its answer.
    expect(slowFinished).not.toContain(3_001);
    expect(client.inFlight).toBe(0);
  });

  it('refuses beyond maxInFlight with OVERLOADED at once, queueing nothing', async () => {
    const client = new RemoteClient(clientConn, { prefix, maxInFlight: 2 });
    const { queries } = callerBuses([], client);
    let inHandSettled = false;
    const inHand = Promise.all([
      queries.execute(Slow, { ms: 300 }),
      queries.execute(Slow, { ms: 300 }),
    ]).finally(() => {
      inHandSettled = true;
    });
    // Refused while both calls were still in hand: it waited for no place to free up.
    const err = await failure(queries.execute(Slow, { ms: 300 }));
    expect(isCqrsError(err, 'OVERLOADED')).toBe(true);
    expect(inHandSettled).toBe(false);
    expect(await within(HANG_MS, inHand)).toEqual(['slept 300', 'slept 300']);
    expect(await within(HANG_MS, queries.execute(Slow, { ms: 1 }))).toBe('slept 1');
  });

  it('retry() on the caller retries UNAVAILABLE (a transient failure)', async () => {
    const { queries } = callerBuses([retry({ maxRetries: 2, baseDelayMs: 1, maxDelayMs: 5 })]);
    const err = await failure(queries.execute(Unserved, {}));
    expect(isCqrsError(err, 'UNAVAILABLE')).toBe(true);
    expect(queries.getMetrics().handlers.Unserved?.executions).toBe(3);
  });

  it('answers a malformed request with an error reply and keeps serving', async () => {
    const bad = headers();
    bad.set('Cqrs-Metadata', '{"user": 42}');
    const replies = await Promise.all([
      clientConn.request(`${prefix}.cmd.CreateUser`, new TextEncoder().encode('{not json'), {
        timeout: HANG_MS,
      }),
      clientConn.request(`${prefix}.cmd.CreateUser`, taggedJson.encode({}), {
        timeout: HANG_MS,
        headers: bad,
      }),
      clientConn.request(`${prefix}.qry.Echo`, new TextEncoder().encode('{"$t":"nope"}'), {
        timeout: HANG_MS,
      }),
    ]);
    for (const reply of replies) {
      expect(reply.headers?.get('Cqrs-Status')).toBe('error');
      expect(taggedJson.decode(reply.data)).toMatchObject({ t: 'error', code: 'VALIDATION' });
    }
    expect(servers[0]?.stats.malformed).toBeGreaterThanOrEqual(2);
    const { commands } = callerBuses();
    expect(await within(HANG_MS, commands.execute(CreateUser, { userId: 2, username: 'bob' }))).toEqual({
      id: 2,
      username: 'bob',
    });
  });

  it('stop() answers the requests in hand, then takes nothing new (callers get UNAVAILABLE)', async () => {
    const own = `${prefix}stop`;
    const bus = new QueryBus();
    bus.registerHandler(Slow, async (input) => {
      await new Promise((resolve) => setTimeout(resolve, input.ms));
      return `done ${input.ms}`;
    });
    const server = serve(serverConn, bus, { prefix: own });
    await serverConn.flush();
    const caller = new QueryBus();
    caller.registerHandler(Slow, remote(clientConn, { prefix: own }));
    const inHand = caller.execute(Slow, { ms: 400 });
    while (server.stats.inFlight === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const stopped = server.stop();
    expect(await within(HANG_MS, inHand)).toBe('done 400');
    await within(HANG_MS, stopped);
    expect(server.stats).toMatchObject({ received: 1, succeeded: 1, inFlight: 0 });
    const err = await failure(caller.execute(Slow, { ms: 1 }));
    expect(isCqrsError(err, 'UNAVAILABLE')).toBe(true);
  });

  it('answers UNAVAILABLE when the connection is closed, before or while a request waits', async () => {
    const doomed = await connect({ servers: nats?.url ?? '' });
    const client = new RemoteClient(doomed, { prefix });
    const { queries } = callerBuses([], client);
    const waiting = queries.execute(Slow, { ms: 2_000 });
    await doomed.flush();
    await doomed.close();
    expect(isCqrsError(await failure(waiting), 'UNAVAILABLE')).toBe(true);
    expect(isCqrsError(await failure(queries.execute(Slow, { ms: 1 })), 'UNAVAILABLE')).toBe(true);
    expect(client.inFlight).toBe(0);
  });

  it('refuses bad options at once with INVALID_REGISTRATION', () => {
    expect(() => remote(new RemoteClient(clientConn), { timeoutMs: 5 })).toThrow(/only options.subject/);
    expect(() => new RemoteClient(clientConn, { maxInFlight: 0 })).toThrow(/maxInFlight/);
    expect(() => remote(clientConn, { prefix: 'a b' })).toThrow(/prefix/);
    expect(() => serve(serverConn, served.commands, { handlers: ['Nope'] })).toThrow(/Nope/);
    try {
      remote(clientConn, { subject: 'x.*' });
    } catch (err) {
      expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
      return;
    }
    throw new Error('remote() accepted a wildcard subject');
  });
});
