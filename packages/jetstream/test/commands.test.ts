/**
 * Durable commands against a real JetStream-enabled nats-server: stored at PubAck, run once by a serving
 * node through its CommandBus, acknowledged after success, retried with backoff on a transient failure,
 * dead-lettered at once on a permanent one or after maxDeliver attempts, replayed from the dead letters,
 * de-duplicated by messageId (stream window and completions bucket), and refused at send time when bad.
 */
import { CommandBus, defineCommand, isCqrsError, validation } from '@cqrs-pool/core';
import { DurableHeaders, permanent } from '@cqrs-pool/jetstream';
import { taggedJson } from '@cqrs-pool/nats';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CompletionStore } from '../src/completions/CompletionStore.js';
import { completionKey } from '../src/wire/messageId.js';
import { gate, Nodes, rejection, testOptions, until } from './durableHelpers.js';
import { jetStreamForTests, uniquePrefix } from './testJetStream.js';

const server = await jetStreamForTests('commands.test.ts');

const Deposit = defineCommand('Deposit', {
  input: z.object({ accountId: z.string(), amount: z.number().int().positive() }),
  output: z.object({ balance: z.number() }),
});
const Flaky = defineCommand('Flaky', { input: z.object({ failures: z.number() }) });
const Slow = defineCommand('Slow', { input: z.object({}) });
const Refuse = defineCommand('Refuse', { input: z.object({}) });
const Unknown = defineCommand('Unknown', { input: z.object({}) });

describe.skipIf(server === undefined)('durable commands over a real JetStream', () => {
  const nodes = new Nodes(server?.url ?? '');
  afterEach(() => nodes.closeAll());
  afterAll(() => server?.stop());

  function bankBus() {
    const balances = new Map<string, number>();
    const runs: { messageId: string; deliveryCount: string }[] = [];
    const bus = new CommandBus({ middleware: [validation()] });
    bus.registerHandler(
      Deposit,
      (input, ctx) => {
        runs.push({
          messageId: ctx.metadata.messageId ?? '',
          deliveryCount: ctx.metadata.deliveryCount ?? '',
        });
        const balance = (balances.get(input.accountId) ?? 0) + input.amount;
        balances.set(input.accountId, balance);
        return { balance };
      },
      { orderingKey: (input) => input.accountId },
    );
    return { bus, balances, runs };
  }

  it('stores a command at PubAck, runs it once on a serving node and hands back its result', async () => {
    const options = testOptions();
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    const sender = await nodes.durable({ ...options, orderingFrom: bus });

    const receipt = await sender.send(Deposit, { accountId: 'a-1', amount: 5 }, { messageId: 'dep-1' });
    expect(receipt).toMatchObject({
      messageId: 'dep-1',
      duplicate: false,
      stream: node.options.names.commands,
    });
    expect(receipt.subject).toMatch(/\.dcmd\.\d+\.Deposit$/);
    expect(await sender.result('dep-1', { name: 'Deposit' })).toEqual({ balance: 5 });
    expect(await sender.execute(Deposit, { accountId: 'a-1', amount: 2 }, { messageId: 'dep-2' })).toEqual({
      balance: 7,
    });
    expect(runs).toEqual([
      { messageId: 'dep-1', deliveryCount: '1' },
      { messageId: 'dep-2', deliveryCount: '1' },
    ]);
    expect(served.stats).toMatchObject({ received: 2, succeeded: 2, failed: 0, deadLettered: 0 });
    // Acknowledged: the work queue is empty.
    const jsm = await jetstreamManager(await nodes.connect());
    await until(
      async () => (await jsm.streams.info(node.options.names.commands)).state.messages === 0,
      'empty queue',
    );
  });

  it('de-duplicates by messageId: a second send is not stored, a second execute finds the same outcome', async () => {
    const options = testOptions();
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    await node.serve(bus);
    const first = await node.send(Deposit, { accountId: 'a', amount: 3 }, { messageId: 'once' });
    const again = await node.send(Deposit, { accountId: 'a', amount: 3 }, { messageId: 'once' });
    expect(again).toMatchObject({ duplicate: true, seq: first.seq });
    expect(await node.execute(Deposit, { accountId: 'a', amount: 3 }, { messageId: 'once' })).toEqual({
      balance: 3,
    });
    expect(await node.execute(Deposit, { accountId: 'a', amount: 3 }, { messageId: 'once' })).toEqual({
      balance: 3,
    });
    expect(runs).toHaveLength(1);
  });

  it('acknowledges a completed messageId stored again (past the duplicate window) without running it', async () => {
    const options = testOptions();
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    const done = await node.send(Deposit, { accountId: 'kv', amount: 1 }, { messageId: 'kv-1' });
    await node.result('kv-1');
    // The same command stored again under another Nats-Msg-Id: what a redelivery after a lost ack, or a
    // re-send after the stream forgot the id (window passed, server restarted), looks like to a node.
    const h = headers();
    h.set(DurableHeaders.MESSAGE_ID, 'kv-1');
    h.set(DurableHeaders.METADATA, '{}');
    const js = jetstream(await nodes.connect());
    await js.publish(done.subject, taggedJson.encode({ accountId: 'kv', amount: 1 }), {
      msgID: 'other-id',
      headers: h,
    });
    await until(() => served.stats.duplicates === 1, 'the duplicate to be acknowledged');
    expect(runs).toHaveLength(1);
    expect(served.stats).toMatchObject({ received: 2, succeeded: 1 });
  });

  it('retries a transient failure with backoff, telling the handler the delivery count', async () => {
    const options = testOptions({ maxDeliver: 4 });
    const counts: string[] = [];
    const bus = new CommandBus();
    bus.registerHandler(Flaky, (input, ctx) => {
      counts.push(ctx.metadata.deliveryCount ?? '');
      if (counts.length <= input.failures) throw new Error(`transient ${counts.length}`);
      return 'ok';
    });
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    expect(await node.execute(Flaky, { failures: 2 }, { messageId: 'flaky' })).toBe('ok');
    expect(counts).toEqual(['1', '2', '3']);
    expect(served.stats).toMatchObject({ failed: 2, retried: 2, succeeded: 1, deadLettered: 0 });
  });

  it('dead-letters a permanent handler error at once, with its error, and the waiter gets it', async () => {
    const options = testOptions({ maxDeliver: 5 });
    let calls = 0;
    const bus = new CommandBus();
    bus.registerHandler(Refuse, () => {
      calls++;
      throw permanent(Object.assign(new Error('account closed'), { code: 'ACCOUNT_CLOSED' }));
    });
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    const err = await rejection(node.execute(Refuse, {}, { messageId: 'refused' }));
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    expect((err as { cause?: { code?: string } }).cause?.code).toBe('ACCOUNT_CLOSED');
    expect(calls).toBe(1);
    expect(served.stats).toMatchObject({ failed: 1, retried: 0, deadLettered: 1 });
    const [letter] = await node.deadLetters.list();
    expect(letter).toMatchObject({
      kind: 'command',
      name: 'Refuse',
      messageId: 'refused',
      reason: 'permanent',
      deliveries: 1,
    });
    expect(isCqrsError(letter?.error, 'HANDLER_FAILED')).toBe(true);
    // The same messageId stored again (not a replay): the same command, dead-lettered already, not run again.
    const h = headers();
    h.set(DurableHeaders.MESSAGE_ID, 'refused');
    const js = jetstream(await nodes.connect());
    await js.publish(letter?.subject ?? '', taggedJson.encode({}), { msgID: 'again', headers: h });
    await until(() => served.stats.duplicates === 1, 'the copy to be settled');
    expect(calls).toBe(1);
    expect(await node.deadLetters.count()).toBe(1);
    expect(isCqrsError(await rejection(node.result('refused')), 'HANDLER_FAILED')).toBe(true);
  });

  it('dead-letters VALIDATION and HANDLER_NOT_FOUND at once', async () => {
    const options = testOptions({ maxDeliver: 5 });
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    await node.serve(bus);
    // By name: the sender's schema check is skipped, the serving bus's validation() refuses it.
    const invalid = await rejection(
      node.execute('Deposit', { accountId: 'x', amount: -1 }, { messageId: 'neg' }),
    );
    expect(isCqrsError(invalid, 'VALIDATION')).toBe(true);
    const unknown = await rejection(node.execute(Unknown, {}, { messageId: 'nobody' }));
    expect(isCqrsError(unknown, 'HANDLER_NOT_FOUND')).toBe(true);
    expect(runs).toHaveLength(0);
    const letters = await node.deadLetters.list();
    expect(letters.map((l) => [l.messageId, l.reason, l.error.code, l.deliveries])).toEqual([
      ['neg', 'permanent', 'VALIDATION', 1],
      ['nobody', 'permanent', 'HANDLER_NOT_FOUND', 1],
    ]);
  });

  it('dead-letters after maxDeliver transient failures; a replay runs it again and removes the letter', async () => {
    const options = testOptions({ maxDeliver: 3 });
    let healthy = false;
    const counts: string[] = [];
    const bus = new CommandBus();
    bus.registerHandler(Flaky, (_input, ctx) => {
      counts.push(ctx.metadata.deliveryCount ?? '');
      if (!healthy) throw new Error('downstream is down');
      return 'recovered';
    });
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    const err = await rejection(node.execute(Flaky, { failures: 99 }, { messageId: 'poison' }));
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    expect(counts).toEqual(['1', '2', '3']);
    const [letter] = await node.deadLetters.list();
    expect(letter).toMatchObject({
      reason: 'max-deliver',
      deliveries: 3,
      messageId: 'poison',
      value: { failures: 99 },
    });
    expect(await node.deadLetters.count()).toBe(1);

    healthy = true;
    const replayed = await node.deadLetters.replay(letter?.seq ?? -1);
    expect(replayed).toMatchObject({ messageId: 'poison', subject: letter?.subject });
    await until(() => served.stats.succeeded === 1, 'the replayed command to succeed');
    expect(await node.result('poison')).toBe('recovered');
    expect(counts).toEqual(['1', '2', '3', '1']);
    expect(await node.deadLetters.count()).toBe(0);
    expect(isCqrsError(await rejection(node.deadLetters.replay(letter?.seq ?? -1)), 'VALIDATION')).toBe(true);
  });

  it('terms and dead-letters a malformed stored message with the reason, never retrying it', async () => {
    const options = testOptions({ maxDeliver: 5 });
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    const js = jetstream(await nodes.connect());
    const prefix = node.options.prefix;
    await js.publish(`${prefix}.dcmd.u.Deposit`, new TextEncoder().encode('{not json'), {
      msgID: 'raw-1',
      headers: (() => {
        const h = headers();
        h.set(DurableHeaders.MESSAGE_ID, 'raw-1');
        return h;
      })(),
    });
    await js.publish(`${prefix}.dcmd.u.Deposit`, taggedJson.encode({ accountId: 'a', amount: 1 }), {
      msgID: 'raw-2',
    });
    await until(() => served.stats.deadLettered === 2, 'both malformed messages to be dead-lettered');
    const letters = await node.deadLetters.list();
    expect(letters.map((l) => [l.reason, l.deliveries, l.error.code])).toEqual([
      ['malformed', 1, 'VALIDATION'],
      ['malformed', 1, 'VALIDATION'],
    ]);
    expect(letters[0]?.error.message).toMatch(/cannot be decoded/);
    expect(letters[1]?.error.message).toMatch(/Cqrs-Message-Id/);
    expect(served.stats).toMatchObject({ received: 2, deadLettered: 2, retried: 0 });
    expect(runs).toHaveLength(0);
  });

  it('refuses at send time, storing nothing: an oversized message, a bad messageId, input its schema refuses', async () => {
    const options = testOptions({ maxMessageBytes: 1_024 });
    const node = await nodes.durable(options);
    const big = await rejection(node.send('Deposit', { accountId: 'x'.repeat(2_000), amount: 1 }));
    expect(isCqrsError(big, 'VALIDATION')).toBe(true);
    expect((big as Error).message).toMatch(/over the limit of 1024 bytes/);
    expect(
      isCqrsError(
        await rejection(node.send(Deposit, { accountId: 'a', amount: 1 }, { messageId: '' })),
        'VALIDATION',
      ),
    ).toBe(true);
    const schema = await rejection(node.send(Deposit, { accountId: 'a', amount: 0 }));
    expect(isCqrsError(schema, 'VALIDATION')).toBe(true);
    expect((schema as { issues?: unknown[] }).issues?.length).toBeGreaterThan(0);
    expect(isCqrsError(await rejection(node.send('Bad.Name', {})), 'VALIDATION')).toBe(true);
    expect(
      isCqrsError(
        await rejection(
          node.send(Deposit, { accountId: 'a', amount: 1 }, { orderingKey: {} as unknown as string }),
        ),
        'VALIDATION',
      ),
    ).toBe(true);
    const fn = await rejection(node.send('Deposit', { f: () => 1 }));
    expect(isCqrsError(fn, 'NOT_CLONEABLE')).toBe(true);
    const jsm = await jetstreamManager(await nodes.connect());
    expect((await jsm.streams.info(node.options.names.commands)).state.messages).toBe(0);
  });

  it('keeps a long handler from being redelivered while it runs (working() every third of ackWait)', async () => {
    const options = testOptions({ ackWaitMs: 400 });
    const held = gate();
    let starts = 0;
    const bus = new CommandBus();
    bus.registerHandler(Slow, async () => {
      starts++;
      await held.promise;
      return 'done';
    });
    const a = await nodes.durable(options);
    const b = await nodes.durable(options);
    const servedA = await a.serve(bus);
    const servedB = await b.serve(bus);
    await a.send(Slow, {}, { messageId: 'slow' });
    await until(() => starts === 1, 'the handler to start');
    // Five ack waits: without working() the message would have gone to a node again by now.
    await new Promise((resolve) => setTimeout(resolve, 5 * 400));
    expect(starts).toBe(1);
    held.open();
    expect(await a.result('slow')).toBe('done');
    expect(servedA.stats.received + servedB.stats.received).toBe(1);
  });

  it("never takes over a live node's claim, however far its clock is off; takes it over once it stops refreshing it", async () => {
    const completions = `SKEW_${uniquePrefix('c')}`;
    const options = testOptions({ ackWaitMs: 3_000, names: { completions } });
    const { bus, runs } = bankBus();
    const node = await nodes.durable(options);
    const served = await node.serve(bus);
    // Another node claimed the command first and runs it, its clock an hour behind this one: it refreshes
    // its claim as a live node does (every third of ackWait, well within), each time with its own time.
    const kv = await new Kvm(jetstream(await nodes.connect())).open(completions);
    const store = new CompletionStore(kv, taggedJson, 1 << 20, 1_000);
    const key = completionKey('skewed-1');
    const skewedClaim = () => store.claimed(1, 'skewed', Date.now() - 3_600_000);
    await kv.create(key, skewedClaim());
    let refreshing = true;
    const refresher = (async () => {
      while (refreshing) {
        await kv.put(key, skewedClaim());
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await node.send(Deposit, { accountId: 'skew', amount: 5 }, { messageId: 'skewed-1' });
      await until(() => served.stats.deferred >= 3, 'three deliveries given back to the live claim');
      expect(runs).toHaveLength(0);
    } finally {
      // The other node dies: its claim, no longer refreshed, goes stale, and this node runs the command.
      refreshing = false;
      await refresher;
    }
    expect(await node.result('skewed-1')).toEqual({ balance: 5 });
    expect(runs).toEqual([{ messageId: 'skewed-1', deliveryCount: expect.any(String) }]);
  });

  it('stops gracefully: the running command finishes and is acknowledged, the pulled ones go to another node at once', async () => {
    // An ack wait longer than the test's guard: a command held back by the stopped node would never arrive.
    const options = testOptions({ ackWaitMs: 60_000, completionTtlMs: 600_000 });
    const held = gate();
    const ran: string[] = [];
    const bus = new CommandBus();
    bus.registerHandler(Slow, async (_input, ctx) => {
      ran.push(ctx.metadata.messageId ?? '');
      if (ctx.metadata.messageId === 'first') await held.promise;
      return ctx.metadata.messageId;
    });
    const a = await nodes.durable(options);
    const servedA = await a.serve(bus, { maxInFlight: 1 });
    await a.send(Slow, {}, { messageId: 'first' });
    await until(() => ran.length === 1, 'the first command to start');
    for (const id of ['second', 'third', 'fourth']) await a.send(Slow, {}, { messageId: id });
    const stopped = servedA.stop();
    held.open();
    await stopped;
    expect(servedA.stats).toMatchObject({ succeeded: 1, inFlight: 0 });
    const b = await nodes.durable(options);
    await b.serve(bus);
    for (const id of ['first', 'second', 'third', 'fourth'])
      expect(await b.result(id, { timeoutMs: 15_000 })).toBe(id);
    expect(ran.filter((id) => id === 'first')).toHaveLength(1);
  });

  it('ends a wait with TIMEOUT when no node serves the command; it stays stored and runs later', async () => {
    const options = testOptions();
    const { bus } = bankBus();
    const node = await nodes.durable(options);
    const err = await rejection(
      node.execute(Deposit, { accountId: 'later', amount: 4 }, { messageId: 'late', timeoutMs: 300 }),
    );
    expect(isCqrsError(err, 'TIMEOUT')).toBe(true);
    await node.serve(bus);
    expect(await node.result('late')).toEqual({ balance: 4 });
  });

  it('refuses bad options with INVALID_REGISTRATION naming the option', async () => {
    const nc = await nodes.connect();
    const { durableMessaging } = await import('@cqrs-pool/jetstream');
    for (const [options, words] of [
      [{ partitions: 0 }, 'options.partitions'],
      [{ prefix: 'a b' }, 'options.prefix'],
      [{ completionTtlMs: 1_000, duplicateWindowMs: 60_000 }, 'options.completionTtlMs'],
      [{ backoff: { baseDelayMs: 10, maxDelayMs: 5 } }, 'options.backoff.maxDelayMs'],
    ] as const) {
      const err = await rejection(durableMessaging(nc, options));
      expect(isCqrsError(err, 'INVALID_REGISTRATION'), words).toBe(true);
      expect((err as Error).message).toContain(words);
    }
    const existing = testOptions({ partitions: 4 });
    await nodes.durable(existing);
    const other = await rejection(durableMessaging(nc, { ...existing, partitions: 8 }));
    expect((other as Error).message).toMatch(/created with 4 partitions/);
  });
});
