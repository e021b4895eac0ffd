/**
 * remote() calls travelling in batches: every call settles exactly once with its own outcome, whatever
 * its batch-mates do; the bounds refuse per call; a lone call still goes alone; nodes that stop or that do
 * not read batches lose nothing. Against a real nats-server.
 */
import type { ErrorCode } from '@cqrs-pool/core';
import { defineQuery, isCqrsError, QueryBus, timeout, validation } from '@cqrs-pool/core';
import type { NatsServer, RemoteClientOptions } from '@cqrs-pool/nats';
import { RemoteClient, remote, serve, taggedJson } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect, headers } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventually, failure, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('batching.test.ts');
const prefix = `bt${process.pid}`;

const Mixed = defineQuery('Mixed', {
  input: z.object({ i: z.number().int().min(0), fail: z.boolean() }),
  output: z.object({ i: z.number(), who: z.string() }),
});
// Two names for one gated handler: one the caller bounds with timeout(), one it aborts.
const SlowT = defineQuery('SlowT', { input: z.object({ i: z.number() }), output: z.number() });
const SlowA = defineQuery('SlowA', { input: z.object({ i: z.number() }), output: z.number() });
const Gated = defineQuery('Gated', { input: z.object({ i: z.number() }), output: z.string() });

interface Gate {
  open: () => void;
  opened: Promise<void>;
}
function newGate(): Gate {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

function codeOf(err: unknown): ErrorCode | undefined {
  return isCqrsError(err) ? err.code : undefined;
}

describe.skipIf(nats === undefined)('remote calls in batches', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let server: NatsServer;
  let gate = newGate();

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    const bus = new QueryBus({ middleware: [validation()] });
    bus.registerHandler(Mixed, (input, ctx) => {
      if (input.fail) throw Object.assign(new Error(`failed ${input.i}`), { code: 'E_MIXED', i: input.i });
      return { i: input.i, who: ctx.metadata.who ?? '' };
    });
    const slow = async (input: { i: number }): Promise<number> => {
      await gate.opened;
      return input.i;
    };
    bus.registerHandler(SlowT, slow);
    bus.registerHandler(SlowA, slow);
    server = serve(serverConn, bus, { prefix, maxInFlight: 50_000 });
    await serverConn.flush();
  });

  afterAll(async () => {
    gate.open();
    await server?.stop();
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  it('settles 10,000 mixed calls exactly once each, with their own result or error', async () => {
    gate = newGate();
    // Batches of up to 1024: the calls aborted at once are then all still held when aborted (none leaves
    // early in a full batch), so exactly those never reach the node.
    const client = new RemoteClient(clientConn, { prefix, maxInFlight: 20_000, batching: { maxSize: 1024 } });
    const caller = new QueryBus();
    caller.registerHandler(Mixed, remote(client));
    caller.registerHandler(SlowT, remote(client), { middleware: [timeout(150)] });
    caller.registerHandler(SlowA, remote(client));
    const before = server.stats;
    const total = 10_000;
    type Kind = 'ok' | 'failed' | 'invalid' | 'timeout' | 'abortedEarly' | 'abortedLate';
    const kinds: Kind[] = [];
    const lateAborts: AbortController[] = [];
    let quickSettled = 0;
    const quick = 8_000;
    const settledTimes = new Array<number>(total).fill(0);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const slot = i % 10;
      const kind: Kind =
        slot <= 5
          ? 'ok'
          : slot === 6
            ? 'failed'
            : slot === 7
              ? 'invalid'
              : slot === 8
                ? 'timeout'
                : i % 20 === 19
                  ? 'abortedEarly'
                  : 'abortedLate';
      kinds.push(kind);
      let call: Promise<unknown>;
      if (kind === 'timeout') call = caller.execute(SlowT, { i });
      else if (kind === 'abortedEarly' || kind === 'abortedLate') {
        const controller = new AbortController();
        call = caller.execute(SlowA, { i }, { signal: controller.signal });
        if (kind === 'abortedEarly') controller.abort();
        else lateAborts.push(controller);
      } else {
        call = caller.execute(
          Mixed,
          { i: kind === 'invalid' ? -i : i, fail: kind === 'failed' },
          { metadata: { who: `caller ${i}` } },
        );
      }
      const counted = (): void => {
        settledTimes[i] = (settledTimes[i] as number) + 1;
        if (kind === 'ok' || kind === 'failed' || kind === 'invalid') {
          // Once every quick call is in, the pending slow ones are abandoned by their callers.
          if (++quickSettled === quick) for (const c of lateAborts) c.abort();
        }
      };
      calls.push(
        call.then(
          (value) => {
            counted();
            return { ok: true, value };
          },
          (err: unknown) => {
            counted();
            return { ok: false, err };
          },
        ),
      );
    }
    const outcomes = (await within(60_000, Promise.all(calls))) as (
      | { ok: true; value: unknown }
      | { ok: false; err: unknown }
    )[];
    expect(settledTimes.every((n) => n === 1)).toBe(true);
    const wrong: string[] = [];
    outcomes.forEach((o, i) => {
      const kind = kinds[i] as Kind;
      const fine =
        kind === 'ok'
          ? o.ok &&
            (o.value as { i: number; who: string }).i === i &&
            (o.value as { who: string }).who === `caller ${i}`
          : kind === 'failed'
            ? !o.ok &&
              codeOf(o.err) === 'HANDLER_FAILED' &&
              (o.err as Error).message === `Mixed failed: failed ${i}` &&
              ((o.err as Error).cause as { i?: number }).i === i
            : kind === 'invalid'
              ? !o.ok &&
                codeOf(o.err) === 'VALIDATION' &&
                (o.err as { issues?: unknown[] }).issues?.length === 1
              : kind === 'timeout'
                ? !o.ok && codeOf(o.err) === 'TIMEOUT'
                : !o.ok && codeOf(o.err) === 'ABORTED';
      if (!fine) wrong.push(`${i} ${kind}: ${o.ok ? JSON.stringify(o.value) : String(o.err)}`);
    });
    expect(wrong.slice(0, 5)).toEqual([]);
    // The calls went in batches; the abandoned ones hold no slot.
    expect(client.batchStats.calls).toBeGreaterThan(total / 2);
    expect(client.inFlight).toBe(0);
    const metrics = caller.getMetrics().handlers;
    expect(metrics.Mixed).toMatchObject({ executions: 8_000, failures: 2_000, inFlight: 0 });
    expect(metrics.SlowT).toMatchObject({ executions: 1_000, failures: 1_000 });
    expect(metrics.SlowA).toMatchObject({ executions: 1_000, failures: 1_000 });
    // The serving node ran every call that left the caller: the early-aborted ones never did.
    gate.open();
    await eventually(() => server.stats.inFlight === 0, 20_000, 'the node to finish');
    const stats = server.stats;
    expect(stats.received - before.received).toBe(total - 500);
    expect(stats.failed - before.failed).toBe(2_000);
    expect(stats.succeeded - before.succeeded).toBe(total - 500 - 2_000);
    expect(stats.malformed).toBe(before.malformed);
  });

  it('sends a lone call alone, and calls made together in batches', async () => {
    const client = new RemoteClient(clientConn, { prefix });
    const caller = new QueryBus();
    caller.registerHandler(Mixed, remote(client));
    for (let i = 0; i < 3; i++)
      expect(await within(5_000, caller.execute(Mixed, { i, fail: false }))).toMatchObject({ i });
    expect(client.batchStats).toEqual({ messages: 0, calls: 0 });
    const together = await within(
      5_000,
      Promise.all([0, 1, 2, 3, 4].map((i) => caller.execute(Mixed, { i, fail: false }))),
    );
    expect(together.map((r) => r.i)).toEqual([0, 1, 2, 3, 4]);
    // The first went at once, alone; the four made in the same turn left together.
    expect(client.batchStats).toEqual({ messages: 1, calls: 4 });
    const off = new RemoteClient(clientConn, { prefix, batching: false });
    const plain = new QueryBus();
    plain.registerHandler(Mixed, remote(off));
    await within(5_000, Promise.all([0, 1, 2, 3].map((i) => plain.execute(Mixed, { i, fail: false }))));
    expect(off.batchStats).toEqual({ messages: 0, calls: 0 });
    expect(off.batching).toBe(false);
  });

  it('holds calls behind a batch in flight, but sends a turn’s calls by its end once they fill a batch', async () => {
    const own = `${prefix}.turn`;
    const closed = newGate();
    const bus = new QueryBus();
    bus.registerHandler(Gated, async (input) => {
      await closed.opened;
      return `gated ${input.i}`;
    });
    const node = serve(serverConn, bus, { prefix: own });
    await serverConn.flush();
    // A long hold: a call held behind a batch in flight waits for a reply, and none comes while gated.
    const client = new RemoteClient(clientConn, {
      prefix: own,
      batching: { maxSize: 16, maxDelayMs: 60_000 },
    });
    const caller = new QueryBus();
    caller.registerHandler(Gated, remote(client));
    const first = [0, 1, 2].map((i) => caller.execute(Gated, { i }));
    await eventually(() => node.stats.received === 3);
    expect(client.batchStats).toEqual({ messages: 1, calls: 2 });
    // A batch is in flight: three calls are held.
    const held = [3, 4, 5].map((i) => caller.execute(Gated, { i }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(node.stats.received).toBe(3);
    // Enough more in one turn to fill two batches: those leave at once, and the rest at the end of the turn.
    const more = Array.from({ length: 16 * 2 + 5 - 3 }, (_, k) => caller.execute(Gated, { i: 6 + k }));
    await eventually(
      () => node.stats.received === 3 + 16 * 2 + 5,
      5_000,
      'every call of the turn to reach the node',
    );
    expect(client.batchStats).toEqual({ messages: 4, calls: 2 + 16 * 2 + 5 });
    closed.open();
    const all = [...first, ...held, ...more];
    expect(await within(10_000, Promise.all(all))).toEqual(all.map((_, i) => `gated ${i}`));
    await node.stop();
  });

  it('refuses OVERLOADED per call at the client’s maxInFlight, and at the node’s', async () => {
    const client = new RemoteClient(clientConn, { prefix, maxInFlight: 40 });
    const caller = new QueryBus();
    caller.registerHandler(Mixed, remote(client));
    const results = await within(
      10_000,
      Promise.allSettled(Array.from({ length: 60 }, (_, i) => caller.execute(Mixed, { i, fail: false }))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(40);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(20);
    for (const r of refused) expect(codeOf(r.reason)).toBe('OVERLOADED');
    expect(caller.getMetrics().handlers.Mixed?.failuresByCode).toEqual({ OVERLOADED: 20 });

    // A node with room for 10: the first call goes alone, the next 29 in one batch of which 9 fit.
    const own = `${prefix}.small`;
    const small = newGate();
    const bus = new QueryBus();
    bus.registerHandler(Gated, async (input) => {
      await small.opened;
      return `gated ${input.i}`;
    });
    const node = serve(serverConn, bus, { prefix: own, maxInFlight: 10 });
    await serverConn.flush();
    const asker = new QueryBus();
    asker.registerHandler(Gated, remote(clientConn, { prefix: own }));
    const pending = Promise.allSettled(Array.from({ length: 30 }, (_, i) => asker.execute(Gated, { i })));
    await eventually(() => node.stats.received === 30);
    small.open();
    const settled = await within(10_000, pending);
    const overloaded = settled.filter((r) => r.status === 'rejected' && codeOf(r.reason) === 'OVERLOADED');
    expect(overloaded).toHaveLength(20);
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(node.stats).toEqual({ received: 30, succeeded: 10, failed: 20, malformed: 0, inFlight: 0 });
    expect(asker.getMetrics().handlers.Gated?.failuresByCode).toEqual({ OVERLOADED: 20 });
    await node.stop();
  });

  it('answers every call of the batches a stopping node took; the rest go to the node that stays', async () => {
    const own = `${prefix}.split`;
    const held = newGate();
    const leaving = new QueryBus();
    leaving.registerHandler(Gated, async (input) => {
      await held.opened;
      return `leaving ${input.i}`;
    });
    const staying = new QueryBus();
    staying.registerHandler(Gated, (input) => `staying ${input.i}`);
    const otherConn = await connect({ servers: nats?.url ?? '' });
    const nodes = [serve(serverConn, leaving, { prefix: own }), serve(otherConn, staying, { prefix: own })];
    await Promise.all([serverConn.flush(), otherConn.flush()]);
    const client = new RemoteClient(clientConn, { prefix: own, batching: { maxSize: 10 } });
    const caller = new QueryBus();
    caller.registerHandler(Gated, remote(client));
    const first = Array.from({ length: 200 }, (_, i) => caller.execute(Gated, { i }));
    // Batches of 10 land on either node; once the leaving one holds some, it is stopped.
    await eventually(
      () => (nodes[0] as NatsServer).stats.inFlight > 0,
      10_000,
      'the leaving node to take a batch',
    );
    const stopped = (nodes[0] as NatsServer).stop();
    const second = Array.from({ length: 100 }, (_, i) => caller.execute(Gated, { i: 200 + i }));
    held.open();
    const results = await within(20_000, Promise.all([...first, ...second]));
    await within(5_000, stopped);
    expect(results.filter((r, i) => !new RegExp(`^(leaving|staying) ${i}$`).test(r))).toEqual([]);
    const [a, b] = nodes.map((n) => n.stats) as [NatsServer['stats'], NatsServer['stats']];
    expect(a.succeeded).toBe(results.filter((r) => r.startsWith('leaving')).length);
    expect(a.succeeded).toBeGreaterThan(0);
    expect(a).toMatchObject({ failed: 0, inFlight: 0, received: a.succeeded });
    expect(b).toMatchObject({ failed: 0, received: 300 - a.succeeded });
    // Nothing the leaving node took after stop() went unanswered: every call is in one node's count.
    expect(a.received + b.received).toBe(300);
    await nodes[1]?.stop();
    await otherConn.close();
  });

  it('sends calls alone again when a node does not read batches (protocol version 1 only)', async () => {
    const own = `${prefix}.v1`;
    // A node of protocol version 1, as a non-Node server would implement it: one call per request, and a
    // request in a codec it does not speak refused unread.
    const seen: string[] = [];
    const sub = serverConn.subscribe(`${own}.qry.Mixed`, {
      queue: 'cqrs-pool',
      callback: (_err, msg) => {
        const asked = msg.headers?.get('Cqrs-Codec') ?? '';
        seen.push(asked);
        const h = headers();
        h.set('Cqrs-Codec', 'tagged-json/1');
        if (asked !== 'tagged-json/1') {
          h.set('Cqrs-Status', 'error');
          const refusal = {
            t: 'error',
            name: 'CqrsError',
            message: `Mixed: this node speaks tagged-json/1, the request is ${asked}`,
            code: 'VALIDATION',
            cqrs: { handler: 'Mixed' },
          };
          msg.respond(Buffer.from(JSON.stringify(refusal)), { headers: h });
          return;
        }
        const input = taggedJson.decode(msg.data) as { i: number };
        h.set('Cqrs-Status', 'ok');
        msg.respond(taggedJson.encode({ i: input.i, who: 'v1' }), { headers: h });
      },
    });
    await serverConn.flush();
    const client = new RemoteClient(clientConn, { prefix: own });
    const caller = new QueryBus();
    caller.registerHandler(Mixed, remote(client));
    const results = await within(
      5_000,
      Promise.all(Array.from({ length: 20 }, (_, i) => caller.execute(Mixed, { i, fail: false }))),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, who: 'v1' })));
    // One batch tried and refused unread; its calls went again one by one, and so do the next ones.
    expect(seen.filter((c) => c === 'tagged-json/1+batch/1')).toHaveLength(1);
    expect(seen.filter((c) => c === 'tagged-json/1')).toHaveLength(20);
    await within(5_000, Promise.all([1, 2, 3].map((i) => caller.execute(Mixed, { i, fail: false }))));
    expect(client.batchStats.messages).toBe(1);
    sub.unsubscribe();
  });

  it('answers every call of a batch UNAVAILABLE when nothing serves its subject', async () => {
    const client = new RemoteClient(clientConn, { prefix: `${prefix}.nobody` });
    const Nobody = defineQuery('Nobody', { input: z.object({ i: z.number() }) });
    const asker = new QueryBus();
    asker.registerHandler(Nobody, remote(client));
    const errors = await Promise.all([0, 1, 2, 3].map((i) => failure(asker.execute(Nobody, { i }))));
    for (const err of errors) expect(codeOf(err)).toBe('UNAVAILABLE');
    expect(new Set(errors).size).toBe(4);
    expect(client.batchStats).toEqual({ messages: 1, calls: 3 });
    expect(client.inFlight).toBe(0);
  });

  it('sends each call’s remaining time as its deadline: the node answers TIMEOUT past it', async () => {
    gate = newGate();
    const client = new RemoteClient(clientConn, { prefix, timeoutMs: 200 });
    const caller = new QueryBus();
    caller.registerHandler(SlowA, remote(client));
    const before = server.stats;
    const errors = await Promise.all([1, 2, 3].map((i) => failure(caller.execute(SlowA, { i }))));
    // The client's own timer, or the node's TIMEOUT answer at the same deadline: whichever came first.
    for (const err of errors) expect(codeOf(err)).toBe('TIMEOUT');
    // The node answered each at its deadline too (nobody read it): counted as failed there.
    await eventually(() => server.stats.failed - before.failed === 3, 5_000, 'the node’s TIMEOUT answers');
    gate.open();
    await eventually(() => server.stats.inFlight === 0);
    expect(server.stats.succeeded).toBe(before.succeeded);
  });

  it('refuses bad batching options with INVALID_REGISTRATION naming them', () => {
    for (const batching of [
      { maxSize: 0 },
      { maxSize: 1.5 },
      { maxDelayMs: -1 },
      { maxDelayMs: Number.NaN },
      'yes',
    ]) {
      let err: unknown;
      try {
        new RemoteClient(clientConn, { batching: batching as NonNullable<RemoteClientOptions['batching']> });
      } catch (e) {
        err = e;
      }
      expect(codeOf(err), JSON.stringify(batching)).toBe('INVALID_REGISTRATION');
      expect((err as Error).message).toMatch(/batching/);
    }
    expect(new RemoteClient(clientConn).batching).toEqual({ maxSize: 256, maxDelayMs: 1 });
    expect(new RemoteClient(clientConn, { batching: { maxSize: 1 } }).batching).toBe(false);
    expect(() => serve(serverConn, new QueryBus(), { maxBatchSize: 0 })).toThrow(/maxBatchSize/);
  });
});
