/**
 * What a serving node must survive: handlers that throw errors resisting serialization, values too deep or
 * too costly to encode or decode. Each gets an error reply, the node's counts stay exact and it goes on
 * serving. Against a real nats-server.
 */
import { CommandBus, defineQuery, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { remote, serve, taggedJson } from '@cqrs-pool/nats';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hostileErrorKinds, hostileErrors } from '../../core/test/fixtures/hostileErrors.js';
import { ThrowHostile, WhichThread } from '../../core/test/fixtures/hostileMessages.js';
import { Compute, EchoValue } from './fixtures/clusterMessages.js';
import { failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('serveRobustness.test.ts');
const prefix = `r${process.pid}`;
const poolHandlers = new URL('../../../dist/packages/nats/test/fixtures/clusterHandlers.js', import.meta.url);

/** The attacker's value: `{ c: { c: … } }`, `levels` objects deep. */
function nested(levels: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let at = root;
  for (let i = 1; i < levels; i++) at = at.c = {};
  return root;
}

const DeepResult = defineQuery('DeepResult', {
  input: z.object({ levels: z.number() }),
  output: z.unknown(),
});

/** The error a raw reply carries (what a client that is not remote() reads). */
function replyError(reply: Msg): Record<string, unknown> {
  expect(reply.headers?.get('Cqrs-Status')).toBe('error');
  return taggedJson.decode(reply.data) as Record<string, unknown>;
}

describe.skipIf(nats === undefined)('a serving node under hostile handlers and values', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
  });

  afterAll(async () => {
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  it('answers HANDLER_FAILED for an inline handler throwing errors that resist serialization, and goes on', async () => {
    const own = `${prefix}.hostile`;
    const commands = new CommandBus();
    const queries = new QueryBus();
    commands.registerHandler(ThrowHostile, (input) => {
      throw hostileErrors[input.kind]();
    });
    queries.registerHandler(WhichThread, () => 0);
    const servers = [
      serve(serverConn, commands, { prefix: own }),
      serve(serverConn, queries, { prefix: own }),
    ];
    await serverConn.flush();
    const caller = new CommandBus();
    caller.registerHandler(ThrowHostile, remote(clientConn, { prefix: own }));
    const asker = new QueryBus();
    asker.registerHandler(WhichThread, remote(clientConn, { prefix: own }));

    for (const kind of hostileErrorKinds) {
      const err = await failure(caller.execute(ThrowHostile, { kind }));
      expect(isCqrsError(err, 'HANDLER_FAILED'), `${kind}: ${String(err)}`).toBe(true);
      expect(await within(5_000, asker.execute(WhichThread, {})), kind).toBe(0);
    }
    const described = await failure(caller.execute(ThrowHostile, { kind: 'throwingGetter' }));
    expect((described as Error).cause).toMatchObject({
      message: 'getter',
      detail: '[unreadable: Error: boom]',
    });

    const calls = hostileErrorKinds.length + 1;
    expect(servers[0]?.stats).toEqual({
      received: calls,
      succeeded: 0,
      failed: calls,
      malformed: 0,
      inFlight: 0,
    });
    expect(servers[1]?.stats).toMatchObject({
      received: hostileErrorKinds.length,
      succeeded: hostileErrorKinds.length,
    });
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('answers a rejection that is no CqrsError (a custom middleware) as HANDLER_FAILED with it as cause', async () => {
    const own = `${prefix}.plain`;
    const rejections: Record<string, unknown> = { error: new TypeError('plain'), text: 'oops' };
    const bus = new QueryBus({
      middleware: [() => (call) => Promise.reject(rejections[(call.input as { what: string }).what])],
    });
    bus.registerHandler(WhichThread, () => 0);
    const server = serve(serverConn, bus, { prefix: own });
    await serverConn.flush();
    for (const [what, cause] of [
      ['error', { t: 'error', name: 'TypeError', message: 'plain' }],
      ['text', { t: 'value', value: 'oops' }],
    ] as const) {
      const reply = await clientConn.request(`${own}.qry.WhichThread`, taggedJson.encode({ what }), {
        timeout: 5_000,
      });
      expect(replyError(reply), what).toMatchObject({
        t: 'error',
        name: 'CqrsError',
        code: 'HANDLER_FAILED',
        message: `WhichThread failed: ${what === 'error' ? 'plain' : 'oops'}`,
        cqrs: { handler: 'WhichThread' },
        cause,
      });
    }
    await server.stop();
  });

  describe('deep and costly values, on a node with a 2-thread pool', () => {
    const own = `${prefix}.deep`;
    let pool: WorkerPool;
    let queries: QueryBus;
    let server: ReturnType<typeof serve>;
    let caller: QueryBus;

    beforeAll(async () => {
      pool = new WorkerPool({ threads: 2 });
      queries = new QueryBus({ pool, metrics: true });
      queries.registerHandler(Compute, inWorker(poolHandlers, 'compute'));
      queries.registerHandler(EchoValue, inWorker(poolHandlers, 'echoValue'));
      queries.registerHandler(DeepResult, (input) => nested(input.levels));
      await queries.ready();
      server = serve(serverConn, queries, { prefix: own });
      await serverConn.flush();
      caller = new QueryBus();
      for (const def of [Compute, EchoValue, DeepResult])
        caller.registerHandler(def, remote(clientConn, { prefix: own }));
    });

    afterAll(async () => {
      await server?.stop();
      await queries?.close();
      await pool?.close();
    });

    /** The node still runs pool work on both threads, and is back at rest. */
    async function stillServing(): Promise<void> {
      const results = await within(
        10_000,
        Promise.all([1, 2, 3, 4].map((n) => caller.execute(Compute, { n, spinMs: 1 }))),
      );
      expect(results.map((r) => r.n)).toEqual([1, 2, 3, 4]);
      expect(server.stats.inFlight).toBe(0);
      expect(queries.getMetrics().inFlight).toBe(0);
    }

    it('answers three 3000-level inputs sent raw with VALIDATION naming maxDepth, and goes on', async () => {
      const before = server.stats;
      const body = Buffer.from(JSON.stringify({ n: 1, spinMs: 0, deep: nested(3000) }));
      const replies = await within(
        10_000,
        Promise.all(
          [Compute, EchoValue, EchoValue].map((def) =>
            clientConn.request(`${own}.qry.${def.name}`, body, { timeout: 5_000 }),
          ),
        ),
      );
      for (const reply of replies) {
        expect(replyError(reply)).toMatchObject({
          t: 'error',
          code: 'VALIDATION',
          message: expect.stringMatching(/malformed request: nested deeper than 256 levels/),
        });
      }
      expect(server.stats).toEqual({
        ...before,
        received: before.received + 3,
        failed: before.failed + 3,
        malformed: before.malformed + 3,
      });
      await stillServing();
    });

    it('refuses a deep input through remote() with NOT_CLONEABLE before sending it', async () => {
      const received = server.stats.received;
      const err = await failure(caller.execute(EchoValue, nested(3000)));
      expect(isCqrsError(err, 'NOT_CLONEABLE')).toBe(true);
      expect((err as Error).message).toMatch(/input cannot be encoded.*maxDepth/);
      expect(server.stats.received).toBe(received);
      // Within the limit it crosses the wire and both thread boundaries.
      expect(await within(5_000, caller.execute(EchoValue, nested(200)))).toEqual(nested(200));
    });

    it('answers an inline handler returning a 3000-level value with NOT_CLONEABLE, counts stay exact', async () => {
      const before = server.stats;
      const errors = await Promise.all(
        [1, 2, 3].map(() => failure(caller.execute(DeepResult, { levels: 3000 }))),
      );
      for (const err of errors) {
        expect(isCqrsError(err, 'NOT_CLONEABLE')).toBe(true);
        expect((err as Error).message).toMatch(
          /DeepResult: the result cannot be encoded \(tagged-json\).*maxDepth/,
        );
      }
      expect(server.stats).toEqual({ ...before, received: before.received + 3, failed: before.failed + 3 });
      expect(queries.getMetrics().handlers.DeepResult).toMatchObject({
        executions: 3,
        failures: 0,
        inFlight: 0,
      });
      await stillServing();
    });

    it('refuses a bigint of 900,000 digits with a VALIDATION reply naming maxBigIntDigits', async () => {
      const before = server.stats;
      const body = Buffer.from(`{"$t":"b","v":"${'7'.repeat(900_000)}"}`);
      const reply = await clientConn.request(`${own}.qry.EchoValue`, body, { timeout: 5_000 });
      expect(replyError(reply)).toMatchObject({
        code: 'VALIDATION',
        message: expect.stringMatching(/900000 digits, over 4096 \(codec limit maxBigIntDigits\)/),
      });
      expect(server.stats).toMatchObject({
        received: before.received + 1,
        malformed: before.malformed + 1,
        inFlight: 0,
      });
      await stillServing();
    });
  });
});
