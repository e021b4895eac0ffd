/**
 * Durable events against a real JetStream-enabled nats-server: each subscriber group is a durable consumer
 * that hands events to a local EventSink (here a minimal stand-in with core EventBus's publish shape) or a
 * function, acknowledges after success, retries, dead-letters per group and replays to that group only.
 */
import type { Metadata } from '@cqrs-pool/core';
import { CqrsError, defineEvent, EventBus, isCqrsError } from '@cqrs-pool/core';
import type { DurableEvent, EventDeliveryReport, EventSink } from '@cqrs-pool/jetstream';
import { permanent } from '@cqrs-pool/jetstream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Nodes, testOptions, until } from './durableHelpers.js';
import { jetStreamForTests } from './testJetStream.js';

const server = await jetStreamForTests('events.test.ts');

/** A definition as core's `defineEvent` makes it (name, kind, payload schema). */
const OrderPlaced = {
  name: 'OrderPlaced',
  kind: 'event',
  payload: z.object({ orderId: z.number(), total: z.number() }),
} as const;

type Subscriber = (payload: unknown, metadata: Metadata) => unknown;

/** The shape of core's EventBus as far as a group needs it: subscribers by event, a report per publish. */
class LocalEvents implements EventSink {
  readonly seen: { subscriber: string; payload: unknown; metadata: Metadata }[] = [];
  private readonly subscribers = new Map<string, Map<string, Subscriber>>();

  subscribe(event: string, name: string, handler: Subscriber): this {
    const byName = this.subscribers.get(event) ?? new Map<string, Subscriber>();
    byName.set(name, handler);
    this.subscribers.set(event, byName);
    return this;
  }

  async publish(
    name: string,
    payload: unknown,
    options: { metadata: Metadata },
  ): Promise<EventDeliveryReport> {
    const delivered: string[] = [];
    const failed: { subscriber: string; error: unknown }[] = [];
    for (const [subscriber, handler] of this.subscribers.get(name) ?? []) {
      try {
        await handler(payload, options.metadata);
        this.seen.push({ subscriber, payload, metadata: options.metadata });
        delivered.push(subscriber);
      } catch (err) {
        const error = new CqrsError('HANDLER_FAILED', `${name}:${subscriber} failed`, { cause: err });
        failed.push({ subscriber, error });
      }
    }
    return { delivered, failed };
  }
}

describe.skipIf(server === undefined)('durable events over a real JetStream', () => {
  const nodes = new Nodes(server?.url ?? '');
  afterEach(() => nodes.closeAll());
  afterAll(() => server?.stop());

  it('hands every event to every group, and each event to one member of a group', async () => {
    const options = testOptions();
    const publisher = await nodes.durable(options);
    const readModel = new LocalEvents().subscribe('OrderPlaced', 'read-model', () => undefined);
    const invoicesA = new LocalEvents().subscribe('OrderPlaced', 'invoice', () => undefined);
    const invoicesB = new LocalEvents().subscribe('OrderPlaced', 'invoice', () => undefined);
    const g1 = await (await nodes.durable(options)).subscribe('read-model', readModel);
    const g2a = await (await nodes.durable(options)).subscribe('invoices', invoicesA, { maxAckPending: 8 });
    const g2b = await (await nodes.durable(options)).subscribe('invoices', invoicesB, { maxAckPending: 8 });
    for (let orderId = 1; orderId <= 20; orderId++) {
      await publisher.publish(
        OrderPlaced,
        { orderId, total: orderId * 10 },
        { messageId: `order-${orderId}` },
      );
    }
    // Counted once the completion is stored and the event acknowledged, after the sink saw it.
    await until(
      () => g1.stats.succeeded === 20 && g2a.stats.succeeded + g2b.stats.succeeded === 20,
      'all events',
    );
    expect(readModel.seen.map((s) => (s.payload as { orderId: number }).orderId)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const invoiced = [...invoicesA.seen, ...invoicesB.seen].map(
      (s) => (s.payload as { orderId: number }).orderId,
    );
    expect(new Set(invoiced).size).toBe(20);
    expect(readModel.seen[0]?.metadata).toMatchObject({ messageId: 'order-1', deliveryCount: '1' });
    expect(invoicesA.seen.length + invoicesB.seen.length).toBe(20);
  });

  it("feeds core's EventBus: its subscribers run, a failing one makes the group retry, success acks", async () => {
    const options = testOptions();
    const publisher = await nodes.durable(options);
    const Placed = defineEvent('OrderPlaced', { payload: OrderPlaced.payload });
    const events = new EventBus();
    const projected: number[] = [];
    let invoiceAttempts = 0;
    events.subscribe(Placed, 'read-model', (event) => {
      projected.push(event.orderId);
    });
    events.subscribe(Placed, 'invoice', () => {
      // Fails the first delivery of each event: the group is retried, and the whole sink runs again.
      invoiceAttempts++;
      if (invoiceAttempts % 2 === 1) throw new Error('invoice service down');
    });
    const group = await (await nodes.durable(options)).subscribe('orders', events);
    for (let orderId = 1; orderId <= 3; orderId++) {
      await publisher.publish(Placed, { orderId, total: 1 }, { messageId: `bus-${orderId}` });
    }
    await until(() => group.stats.succeeded === 3, 'three events through the bus');
    expect(invoiceAttempts).toBe(6);
    // At-least-once for the group: the read model saw each event once per delivery of the group.
    expect(projected).toEqual([1, 1, 2, 2, 3, 3]);
    expect(events.getMetrics().handlers['OrderPlaced:invoice']).toMatchObject({ executions: 6, failures: 3 });
    await events.close();
  });

  it("starts a new group from the beginning ('all') or from now ('new')", async () => {
    const options = testOptions();
    const publisher = await nodes.durable(options);
    await publisher.publish('OrderPlaced', { orderId: 1, total: 1 });
    const fromAll: DurableEvent[] = [];
    const fromNew: DurableEvent[] = [];
    const node = await nodes.durable(options);
    await node.subscribe('all', (e) => void fromAll.push(e), { from: 'all' });
    await node.subscribe('new', (e) => void fromNew.push(e), { from: 'new' });
    await publisher.publish('OrderPlaced', { orderId: 2, total: 2 });
    await until(() => fromAll.length === 2 && fromNew.length === 1, 'both groups');
    expect(fromNew.map((e) => e.payload)).toEqual([{ orderId: 2, total: 2 }]);
    expect(fromAll.map((e) => e.name)).toEqual(['OrderPlaced', 'OrderPlaced']);
  });

  it('resumes a group where it stopped, and refuses an invalid payload at publish', async () => {
    const options = testOptions();
    const publisher = await nodes.durable(options);
    const seen: number[] = [];
    const first = await nodes.durable(options);
    const sub = await first.subscribe(
      'ledger',
      (e) => void seen.push((e.payload as { orderId: number }).orderId),
    );
    await publisher.publish(OrderPlaced, { orderId: 1, total: 1 });
    await until(() => seen.length === 1, 'the first event');
    await sub.stop();
    await publisher.publish(OrderPlaced, { orderId: 2, total: 2 });
    await (await nodes.durable(options)).subscribe(
      'ledger',
      (e) => void seen.push((e.payload as { orderId: number }).orderId),
    );
    await until(() => seen.length === 2, 'the event published while the group was down');
    expect(seen).toEqual([1, 2]);
    const err = await publisher.publish(OrderPlaced, { orderId: 'x', total: 1 }).catch((e: unknown) => e);
    expect(isCqrsError(err, 'VALIDATION')).toBe(true);
  });

  it('retries a failing subscriber in order, and dead-letters a permanent failure for its group only', async () => {
    const options = testOptions({ maxDeliver: 5 });
    const publisher = await nodes.durable(options);
    let failuresLeft = 2;
    const ledger = new LocalEvents().subscribe('OrderPlaced', 'ledger', (payload, metadata) => {
      const { orderId } = payload as { orderId: number };
      if (orderId === 2 && failuresLeft-- > 0)
        throw new Error(`transient at delivery ${metadata.deliveryCount}`);
      if (orderId === 4) throw permanent(new Error('order 4 cannot be booked'));
    });
    const audit = new LocalEvents().subscribe('OrderPlaced', 'audit', () => undefined);
    const node = await nodes.durable(options);
    const ledgerGroup = await node.subscribe('ledger', ledger);
    const auditGroup = await node.subscribe('audit', audit);
    for (let orderId = 1; orderId <= 5; orderId++)
      await publisher.publish(OrderPlaced, { orderId, total: 1 });
    await until(
      () =>
        ledgerGroup.stats.succeeded + ledgerGroup.stats.deadLettered === 5 &&
        auditGroup.stats.succeeded === 5,
      'both groups to pass every event',
    );
    // One at a time and in order: 2 held 3 back until it succeeded; 4 was dead-lettered, 5 went on.
    expect(ledger.seen.map((s) => (s.payload as { orderId: number }).orderId)).toEqual([1, 2, 3, 5]);
    expect(ledger.seen[1]?.metadata.deliveryCount).toBe('3');
    expect(ledgerGroup.stats).toMatchObject({ retried: 2, deadLettered: 1, succeeded: 4 });
    const [letter] = await node.deadLetters.list();
    expect(letter).toMatchObject({
      kind: 'event',
      group: 'ledger',
      name: 'OrderPlaced',
      reason: 'permanent',
    });
    expect(letter?.value).toEqual({ orderId: 4, total: 1 });

    // Replayed to 'ledger' only: 'audit' acknowledges it without handling it again.
    ledger.subscribe('OrderPlaced', 'ledger', () => undefined);
    await node.deadLetters.replay(letter?.seq ?? -1);
    await until(() => ledger.seen.length === 5, 'the replayed event');
    expect(ledger.seen[4]?.payload).toMatchObject({ orderId: 4 });
    await until(() => auditGroup.stats.received === 6, "audit's view of the replay");
    expect(audit.seen).toHaveLength(5);
    expect(await node.deadLetters.count()).toBe(0);
  });

  it('does not run a group again for an event it completed, and refuses bad group names', async () => {
    const options = testOptions();
    const publisher = await nodes.durable(options);
    const seen: DurableEvent[] = [];
    const node = await nodes.durable(options);
    const group = await node.subscribe('projector', (e) => void seen.push(e));
    await publisher.publish('OrderPlaced', { orderId: 9, total: 9 }, { messageId: 'evt-9' });
    await until(() => seen.length === 1, 'the event');
    // The same event stored again under another Nats-Msg-Id (its first copy's window passed, say).
    const again = await publisher.publish('OrderPlaced', { orderId: 9, total: 9 }, { messageId: 'evt-9' });
    expect(again.duplicate).toBe(true);
    const { jetstream } = await import('@nats-io/jetstream');
    const { headers } = await import('@nats-io/transport-node');
    const h = headers();
    h.set('Cqrs-Message-Id', 'evt-9');
    await jetstream(await nodes.connect()).publish(
      again.subject,
      new TextEncoder().encode('{"orderId":9,"total":9}'),
      {
        msgID: 'another',
        headers: h,
      },
    );
    await until(() => group.stats.duplicates === 1, 'the duplicate');
    expect(seen).toHaveLength(1);
    for (const bad of ['', 'a.b', 'x y']) {
      const err = await node.subscribe(bad, () => undefined).catch((e: unknown) => e);
      expect(isCqrsError(err, 'INVALID_REGISTRATION'), bad).toBe(true);
    }
  });
});
