/**
 * Serving nodes as NATS micro services: `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` list them with their
 * endpoints and the figures of their shared-memory metrics. Asked with the NATS client, as `nats micro`
 * would; against a real nats-server.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CommandBus,
  defineCommand,
  inWorker,
  isCqrsError,
  QueryBus,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { remote, serve } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Compute } from './fixtures/clusterMessages.js';
import { natsWithConfig } from './permissionedNats.js';
import { failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('microService.test.ts');
const prefix = `svc${process.pid}`;
// Own service name: other test files may register services on the same NATS server at the same time.
const name = `cqrs-test-${process.pid}`;
const poolHandlers = new URL('../../../dist/packages/nats/test/fixtures/clusterHandlers.js', import.meta.url);
const Rename = defineCommand('Rename', { input: z.object({ to: z.string().min(3) }), output: z.string() });

const json = (data: Uint8Array): Record<string, unknown> => JSON.parse(Buffer.from(data).toString('utf8'));

describe.skipIf(nats === undefined)('serving nodes as NATS micro services', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let pool: WorkerPool;
  let queries: QueryBus;
  let commands: CommandBus;
  let servers: ReturnType<typeof serve>[];

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    pool = new WorkerPool({ threads: 1 });
    queries = new QueryBus({ pool });
    queries.registerHandler(Compute, inWorker(poolHandlers, 'compute'));
    commands = new CommandBus({ middleware: [validation()] });
    commands.registerHandler(Rename, (input) => `renamed to ${input.to}`);
    const service = { name, version: '1.2.3', metadata: { team: 'core' } };
    servers = [
      serve(serverConn, queries, { prefix, service }),
      serve(serverConn, commands, { prefix, service }),
    ];
    await serverConn.flush();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await queries?.close();
    await commands?.close();
    await pool?.close();
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  it('answers $SRV.PING for each served bus, by name, with its id and version', async () => {
    const [query, command] = await Promise.all(servers.map((s) => within(5_000, s.service)));
    expect(query).toMatchObject({ name, version: '1.2.3' });
    expect(command?.id).not.toBe(query?.id);
    const replies = await clientConn.requestMany(`$SRV.PING.${name}`, '', {
      strategy: 'count',
      maxMessages: 2,
      maxWait: 5_000,
    });
    const pings: Record<string, unknown>[] = [];
    for await (const reply of replies) pings.push(json(reply.data));
    expect(pings.map((p) => p.id).sort()).toEqual([query?.id, command?.id].sort());
    expect(pings[0]).toMatchObject({ type: 'io.nats.micro.v1.ping_response', name, version: '1.2.3' });
  });

  it('lists one endpoint per handler in $SRV.INFO, with subject, queue group and metadata', async () => {
    const query = await servers[0]?.service;
    const info = json(
      (await clientConn.request(`$SRV.INFO.${name}.${query?.id}`, '', { timeout: 5_000 })).data,
    );
    expect(info).toMatchObject({
      type: 'io.nats.micro.v1.info_response',
      name,
      version: '1.2.3',
      description: 'cqrs-pool query handlers',
      metadata: {
        team: 'core',
        'cqrs.kind': 'query',
        'cqrs.prefix': prefix,
        'cqrs.queue': 'cqrs-pool',
        'cqrs.codec': 'tagged-json/1',
      },
      endpoints: [
        {
          name: 'Compute',
          subject: `${prefix}.qry.Compute`,
          queue_group: 'cqrs-pool',
          metadata: { 'cqrs.message': 'Compute', 'cqrs.kind': 'query' },
        },
      ],
    });
  });

  it('reports in $SRV.STATS the requests and the handler’s shared-memory metrics (pool latency included)', async () => {
    const [query, command] = await Promise.all(servers.map((s) => s.service));
    const callerQueries = new QueryBus();
    callerQueries.registerHandler(Compute, remote(clientConn, { prefix }));
    const callerCommands = new CommandBus();
    callerCommands.registerHandler(Rename, remote(clientConn, { prefix }));
    for (let n = 0; n < 3; n++) await within(5_000, callerQueries.execute(Compute, { n, spinMs: 5 }));
    expect(await within(5_000, callerCommands.execute(Rename, { to: 'ada' }))).toBe('renamed to ada');
    expect(isCqrsError(await failure(callerCommands.execute(Rename, { to: 'x' })), 'VALIDATION')).toBe(true);

    const stats = json(
      (await clientConn.request(`$SRV.STATS.${name}.${query?.id}`, '', { timeout: 5_000 })).data,
    );
    expect(stats).toMatchObject({ type: 'io.nats.micro.v1.stats_response', name, id: query?.id });
    const [compute] = stats.endpoints as Record<string, unknown>[];
    expect(compute).toMatchObject({
      name: 'Compute',
      subject: `${prefix}.qry.Compute`,
      num_requests: 3,
      num_errors: 0,
      data: {
        requests: { received: 3, succeeded: 3, failed: 0, malformed: 0, inFlight: 0 },
        handler: { executions: 3, failures: 0, inFlight: 0, circuit: 'closed' },
      },
    });
    // Timed in the pool thread, where the handler spun 5 ms each time.
    const latency = (compute as { data: { handler: { latency: { max: number; p50: number } } } }).data.handler
      .latency;
    expect(latency.max).toBeGreaterThanOrEqual(5);
    expect(latency.p50).toBeGreaterThan(0);

    const commandStats = json(
      (await clientConn.request(`$SRV.STATS.${name}.${command?.id}`, '', { timeout: 5_000 })).data,
    );
    expect((commandStats.endpoints as Record<string, unknown>[])[0]).toMatchObject({
      name: 'Rename',
      num_requests: 2,
      data: {
        requests: { received: 2, succeeded: 1, failed: 1 },
        handler: { executions: 2, failures: 1, failuresByCode: { VALIDATION: 1 } },
      },
    });
  });

  it('stays unlisted with service: false, and refuses a bad service option', async () => {
    const bus = new QueryBus();
    bus.registerHandler(Compute, () => ({ n: 0, node: 'x' }));
    const server = serve(serverConn, bus, { prefix: `${prefix}.off`, service: false });
    expect(await server.service).toBeUndefined();
    expect(server.registrationError).toBeUndefined();
    await server.stop();
    for (const service of [{ name: 'a.b' }, { version: '1.2' }, { metadata: { n: 1 } }, 'yes']) {
      let err: unknown;
      try {
        serve(serverConn, bus, { prefix, service: service as never });
      } catch (e) {
        err = e;
      }
      expect(isCqrsError(err, 'INVALID_REGISTRATION'), JSON.stringify(service)).toBe(true);
    }
  });

  it('leaves $SRV when stopped', async () => {
    const bus = new QueryBus();
    bus.registerHandler(Compute, () => ({ n: 0, node: 'x' }));
    const server = serve(serverConn, bus, { prefix: `${prefix}.stop`, service: { name: `${name}-stop` } });
    const registered = await server.service;
    expect(registered?.name).toBe(`${name}-stop`);
    await server.stop();
    await expect(
      clientConn.request(`$SRV.PING.${name}-stop.${registered?.id}`, '', { timeout: 2_000 }),
    ).rejects.toThrow(/no responders/);
  });
});

describe('a node without the right to subscribe to $SRV', () => {
  it('serves on, unlisted, and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-nats-'));
    const config = join(dir, 'nats.conf');
    writeFileSync(
      config,
      `accounts { APP { users = [
        { user: node, password: node, permissions: { subscribe: ["cqrs.>"], publish: { deny: [">"] }, allow_responses: true } }
        { user: caller, password: caller, permissions: { publish: ["cqrs.>"], subscribe: ["_INBOX.>"] } }
      ] } }\n`,
    );
    const restricted = await natsWithConfig('microService.test.ts', config, {});
    if (restricted === undefined) return;
    const node = await connect({ servers: restricted.url, user: 'node', pass: 'node' });
    const caller = await connect({ servers: restricted.url, user: 'caller', pass: 'caller' });
    try {
      const bus = new QueryBus();
      bus.registerHandler(Compute, (input) => ({ n: input.n, node: 'restricted' }));
      const server = serve(node, bus);
      await node.flush();
      expect(await within(5_000, server.service)).toBeUndefined();
      expect(server.registrationError?.message).toMatch(
        /not listed as a micro service: Permissions Violation for Subscription to "\$SRV/,
      );
      const callers = new QueryBus();
      callers.registerHandler(Compute, remote(caller));
      for (let n = 0; n < 3; n++) {
        expect(await within(5_000, callers.execute(Compute, { n, spinMs: 0 }))).toEqual({
          n,
          node: 'restricted',
        });
      }
      await server.stop();
    } finally {
      await caller.close();
      await node.close();
      await restricted.stop();
    }
  });
});
