/**
 * serve() keeps per-key order within one serving node: requests enter the node's bus in the order NATS
 * delivers them — the calls of a batch in their order in it —, and the bus's `orderingKey` does the rest. (Across nodes, order needs the durable,
 * partitioned path of @cqrs-pool/jetstream.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandBus, defineCommand } from '@cqrs-pool/core';
import { RemoteClient, remote, serve } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('keyOrder.test.ts');
const prefix = `k${process.pid}`;

const Deposit = defineCommand('Deposit', {
  input: z.object({ account: z.string(), seq: z.number(), ms: z.number() }),
  output: z.number(),
});

describe.skipIf(nats === undefined)('per-key order over NATS, within one serving node', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let server: ReturnType<typeof serve> | undefined;
  // What the serving node's handler saw, in the order it ran: [event, account, seq].
  const seen: ['start' | 'end', string, number][] = [];

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    const served = new CommandBus();
    served.registerHandler(
      Deposit,
      async ({ account, seq, ms }) => {
        seen.push(['start', account, seq]);
        await sleep(ms);
        seen.push(['end', account, seq]);
        return seq;
      },
      { orderingKey: (input) => input.account },
    );
    server = serve(serverConn, served, { prefix });
    await serverConn.flush();
  });

  afterAll(async () => {
    await server?.stop();
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  it('runs the calls of one key one at a time, in the order they were sent', async () => {
    const caller = new CommandBus();
    caller.registerHandler(Deposit, remote(clientConn, { prefix }));
    const accounts = ['a', 'b', 'c'];
    const calls = Array.from({ length: 60 }, (_, seq) =>
      caller.execute(Deposit, { account: accounts[seq % 3] as string, seq, ms: (seq * 5) % 4 }),
    );
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 60 }, (_, seq) => seq));
    for (const account of accounts) {
      const events = seen.filter(([, a]) => a === account).map(([event, , seq]) => `${event}:${seq}`);
      const expected = Array.from({ length: 20 }, (_, i) => 3 * i + accounts.indexOf(account)).flatMap(
        (seq) => [`start:${seq}`, `end:${seq}`],
      );
      expect(events).toEqual(expected);
    }
  });

  it('keeps that order through batches: bursts split over several batch messages, some sent while others run', async () => {
    seen.length = 0;
    const client = new RemoteClient(clientConn, { prefix, batching: { maxSize: 16 } });
    const caller = new CommandBus();
    caller.registerHandler(Deposit, remote(client));
    const accounts = ['x', 'y', 'z', 'w'];
    const sent: number[] = [];
    const bursts: Promise<number>[] = [];
    let seq = 0;
    // Three bursts: the second and third are made while batches of the first are still running.
    for (let burst = 0; burst < 3; burst++) {
      for (let i = 0; i < 40; i++, seq++) {
        sent.push(seq);
        bursts.push(
          caller.execute(Deposit, { account: accounts[seq % 4] as string, seq, ms: (seq * 7) % 3 }),
        );
      }
      await sleep(1);
    }
    expect(await Promise.all(bursts)).toEqual(sent);
    expect(client.batchStats.messages).toBeGreaterThanOrEqual(6);
    for (const account of accounts) {
      const events = seen.filter(([, a]) => a === account).map(([event, , s]) => `${event}:${s}`);
      const expected = sent
        .filter((s) => accounts[s % 4] === account)
        .flatMap((s) => [`start:${s}`, `end:${s}`]);
      expect(events).toEqual(expected);
    }
  });
});
