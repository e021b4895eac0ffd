/**
 * What a serving node must survive: handlers that throw errors resisting serialization, values too deep or
 * too costly to encode or decode. Each gets an error reply, the node's counts stay exact and it goes on
 * serving. Against a real nats-server.
 */
import { CommandBus, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { remote, serve } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileErrorKinds, hostileErrors } from '../../core/test/fixtures/hostileErrors.js';
import { ThrowHostile, WhichThread } from '../../core/test/fixtures/hostileMessages.js';
import { failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('serveRobustness.test.ts');
const prefix = `r${process.pid}`;

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
});
