/**
 * The Cqrs-Codec header: each side says what it speaks, a server refuses a request in another codec, a
 * client refuses a reply in another; and plainJson end to end. Against a real nats-server.
 */
import { defineQuery, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { plainJson, RemoteClient, remote, serve, taggedJson } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect, headers } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('codecs.test.ts');
const prefix = `codec${process.pid}`;
const Echo = defineQuery('Echo', { input: z.unknown(), output: z.unknown() });

describe.skipIf(nats === undefined)('codecs on the wire', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let servers: ReturnType<typeof serve>[] = [];

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    const bus = new QueryBus();
    bus.registerHandler(Echo, (input) => input);
    servers = [
      serve(serverConn, bus, { prefix: `${prefix}.json`, codec: plainJson }),
      serve(serverConn, bus, { prefix: `${prefix}.tagged` }),
    ];
    await serverConn.flush();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  function caller(where: 'json' | 'tagged', codec = where === 'json' ? plainJson : taggedJson) {
    const queries = new QueryBus();
    queries.registerHandler(
      Echo,
      remote(new RemoteClient(clientConn, { prefix: `${prefix}.${where}`, codec })),
    );
    return queries;
  }

  it('carries plain JSON end to end: `$t` keys are data, big integers travel as strings', async () => {
    const value = { $t: 'b', v: '12', id: '9007199254740993', list: [1, 'two', null, { ok: true }] };
    expect(await within(5_000, caller('json').execute(Echo, value))).toStrictEqual(value);
    const reply = await clientConn.request(`${prefix}.json.qry.Echo`, plainJson.encode(value), {
      timeout: 5_000,
    });
    expect(reply.headers?.get('Cqrs-Codec')).toBe('json/1');
    expect(reply.headers?.get('Cqrs-Status')).toBe('ok');
    expect(JSON.parse(Buffer.from(reply.data).toString())).toStrictEqual(value);
  });

  it('names the codec on every reply, ok or error', async () => {
    const ok = await clientConn.request(`${prefix}.tagged.qry.Echo`, taggedJson.encode(1), {
      timeout: 5_000,
    });
    expect(ok.headers?.get('Cqrs-Codec')).toBe('tagged-json/1');
    const bad = await clientConn.request(`${prefix}.tagged.qry.Echo`, Buffer.from('{oops'), {
      timeout: 5_000,
    });
    expect(bad.headers?.get('Cqrs-Status')).toBe('error');
    expect(bad.headers?.get('Cqrs-Codec')).toBe('tagged-json/1');
  });

  it('refuses a request that names another codec with VALIDATION, which the caller reads', async () => {
    for (const [where, codec, speaks, sent] of [
      ['json', taggedJson, 'json/1', 'tagged-json/1'],
      ['tagged', plainJson, 'tagged-json/1', 'json/1'],
    ] as const) {
      const err = await failure(caller(where, codec).execute(Echo, { $t: 'u' }));
      expect(isCqrsError(err, 'VALIDATION'), where).toBe(true);
      expect((err as Error).message).toBe(`Echo: this node speaks ${speaks}, the request is ${sent}`);
    }
    expect(servers[0]?.stats.malformed).toBeGreaterThanOrEqual(1);
  });

  it('takes a request without the header in its own codec (a minimal client)', async () => {
    const h = headers();
    h.set('Cqrs-Metadata', '{}');
    const reply = await clientConn.request(`${prefix}.json.qry.Echo`, Buffer.from('{"a":[1,2]}'), {
      timeout: 5_000,
      headers: h,
    });
    expect(reply.headers?.get('Cqrs-Status')).toBe('ok');
    expect(Buffer.from(reply.data).toString()).toBe('{"a":[1,2]}');
  });

  it('refuses a reply in another codec with NOT_CLONEABLE instead of misreading it', async () => {
    const subject = `${prefix}.odd.qry.Echo`;
    const sub = serverConn.subscribe(subject, {
      callback: (_err, msg) => {
        const h = headers();
        h.set('Cqrs-Status', 'ok');
        h.set('Cqrs-Codec', 'msgpack/3');
        msg.respond(Buffer.from([0x81]), { headers: h });
      },
    });
    await serverConn.flush();
    const queries = new QueryBus();
    queries.registerHandler(Echo, remote(clientConn, { subject }));
    const err = await failure(queries.execute(Echo, 1));
    expect(isCqrsError(err, 'NOT_CLONEABLE')).toBe(true);
    expect((err as Error).message).toBe('Echo: the reply is in msgpack/3, this client speaks tagged-json/1');
    sub.unsubscribe();
  });
});
