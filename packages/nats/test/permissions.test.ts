/**
 * Authorization over NATS rests on NATS accounts and subject permissions: the README's configuration
 * (docs/nats-server.conf), checked against a nats-server running it.
 */
import { fileURLToPath } from 'node:url';
import { CommandBus, defineCommand, defineQuery, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { RemoteClient, remote, serve } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ConfiguredNats } from './permissionedNats.js';
import { natsWithConfig } from './permissionedNats.js';
import { failure, within } from './settle.js';

const config = fileURLToPath(new URL('../../../docs/nats-server.conf', import.meta.url));
const passwords = { NODE_PASSWORD: 'n0de', REPORTING_PASSWORD: 'rep0rt', ADMIN_PASSWORD: 'adm1n' };
const nats: ConfiguredNats | undefined = await natsWithConfig('permissions.test.ts', config, passwords);

const Report = defineQuery('Report', { input: z.object({}), output: z.string() });
const DeleteUser = defineCommand('DeleteUser', {
  input: z.object({ userId: z.number() }),
  output: z.string(),
});

describe.skipIf(nats === undefined)('the NATS permissions of docs/nats-server.conf', () => {
  const open: NatsConnection[] = [];
  let servers: ReturnType<typeof serve>[] = [];

  async function as(user: string, pass: string, inboxPrefix?: string): Promise<NatsConnection> {
    const nc = await connect({
      servers: nats?.url ?? '',
      user,
      pass,
      ...(inboxPrefix ? { inboxPrefix } : {}),
    });
    open.push(nc);
    return nc;
  }

  function callers(nc: NatsConnection, options: { timeoutMs?: number } = {}) {
    const client = new RemoteClient(nc, { timeoutMs: options.timeoutMs ?? 10_000 });
    const queries = new QueryBus();
    queries.registerHandler(Report, remote(client));
    const commands = new CommandBus();
    commands.registerHandler(DeleteUser, remote(client));
    return { client, queries, commands };
  }

  beforeAll(async () => {
    const node = await as('node', passwords.NODE_PASSWORD);
    const queries = new QueryBus();
    queries.registerHandler(Report, () => 'report');
    const commands = new CommandBus();
    commands.registerHandler(DeleteUser, (input) => `deleted ${input.userId}`);
    servers = [serve(node, queries), serve(node, commands)];
    await node.flush();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(open.map((nc) => nc.close()));
    await nats?.stop();
  });

  it('lets the admin API run commands and queries, replies on its own inbox prefix', async () => {
    const { client, queries, commands } = callers(
      await as('admin-api', passwords.ADMIN_PASSWORD, '_INBOX_admin'),
    );
    expect(client.inboxPrefix).toBe('_INBOX_admin');
    expect(await within(5_000, queries.execute(Report, {}))).toBe('report');
    expect(await within(5_000, commands.execute(DeleteUser, { userId: 7 }))).toBe('deleted 7');
  });

  it('lets the reporting service query, and refuses its command at once (UNAVAILABLE), not at its timeout', async () => {
    const { queries, commands, client } = callers(
      await as('reporting', passwords.REPORTING_PASSWORD, '_INBOX_reporting'),
    );
    expect(await within(5_000, queries.execute(Report, {}))).toBe('report');
    // The client waits up to 10 s; the refusal comes well within the 5 s bound.
    const err = await failure(commands.execute(DeleteUser, { userId: 7 }), 5_000);
    expect(isCqrsError(err, 'UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/no permission to publish to cqrs\.cmd\.DeleteUser/);
    expect(client.inFlight).toBe(0);
    expect(servers[1]?.stats.received).toBe(1);
  });

  it('does not let a caller read replies on another inbox prefix', async () => {
    const { queries } = callers(await as('reporting', passwords.REPORTING_PASSWORD, '_INBOX_admin'));
    const err = await failure(queries.execute(Report, {}), 5_000);
    expect(isCqrsError(err, 'UNAVAILABLE')).toBe(true);
  });

  it('does not let a caller serve (subscribe to) the cqrs subjects', async () => {
    const impostor = await as('reporting', passwords.REPORTING_PASSWORD, '_INBOX_reporting');
    const bus = new QueryBus();
    bus.registerHandler(Report, () => 'forged');
    const server = serve(impostor, bus);
    await impostor.flush().catch(() => undefined);
    const { queries } = callers(await as('admin-api', passwords.ADMIN_PASSWORD, '_INBOX_admin'));
    for (let i = 0; i < 5; i++) expect(await within(5_000, queries.execute(Report, {}))).toBe('report');
    expect(server.stats.received).toBe(0);
    await server.stop();
  });
});
