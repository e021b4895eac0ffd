/**
 * A serving node taking batch requests (docs/wire-protocol.md, "Batches"), sent raw as a client in any
 * language would: each call answered on its own in reply chunks, counted as a call, refused on its own
 * when it alone is bad; a malformed or oversized envelope refused whole, precisely; and single requests
 * served as before. Against a real nats-server.
 */
import { CommandBus, defineCommand, defineQuery, QueryBus, validation } from '@cqrs-pool/core';
import type { NatsServer } from '@cqrs-pool/nats';
import { serve, taggedJson } from '@cqrs-pool/nats';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { connect, createInbox, headers } from '@nats-io/transport-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodeReplyChunk, encodeFramed, requestEntry } from '../src/batchEnvelope.js';
import { eventually, within } from './settle.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('batchServe.test.ts');
const prefix = `bs${process.pid}`;

const Echo = defineQuery('Echo', { input: z.unknown(), output: z.unknown() });
const Who = defineQuery('Who', { input: z.object({}), output: z.custom<Record<string, string>>() });
const Big = defineQuery('Big', { input: z.object({ kb: z.number() }), output: z.string() });
const Gated = defineQuery('Gated', { input: z.object({ n: z.number() }), output: z.string() });
const Create = defineCommand('Create', {
  input: z.object({ id: z.number().int().min(1) }),
  output: z.number(),
});
const Explode = defineCommand('Explode', { input: z.object({ n: z.number() }) });

/** One call of a raw batch: its input (encoded here) or raw bytes, its deadline and metadata. */
interface RawCall {
  input?: unknown;
  raw?: Uint8Array;
  t?: number;
  md?: Record<string, string>;
}

/** What came back for a batch: every reply message, and each call's outcome by index (once only). */
interface Answer {
  replies: Msg[];
  outcomes: Map<number, { ok: boolean; value: unknown }>;
  /** Outcomes for an index already answered (must stay empty). */
  duplicates: number[];
}

function batchBody(calls: RawCall[]): Uint8Array {
  const parts = calls.map((c) => c.raw ?? taggedJson.encode(c.input));
  const entries = calls.map((c, i) =>
    requestEntry(
      (parts[i] as Uint8Array).byteLength,
      c.t,
      c.md === undefined ? undefined : JSON.stringify(c.md),
    ),
  );
  return encodeFramed(entries, parts);
}

describe.skipIf(nats === undefined)('a serving node taking batch requests', () => {
  let serverConn: NatsConnection;
  let clientConn: NatsConnection;
  let gate: { open: () => void; opened: Promise<void> };
  const started: number[] = [];
  const abortedSignals: number[] = [];
  let servers: NatsServer[] = [];

  function newGate(): void {
    let open = (): void => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    gate = { open, opened };
  }

  /** Sends a raw batch and gathers replies until `expected` outcomes (or one error reply) came. */
  async function send(
    subject: string,
    body: Uint8Array,
    expected: number,
    codec = 'tagged-json/1+batch/1',
    onReply: (answer: Answer) => void = () => {},
  ): Promise<Answer> {
    const inbox = createInbox();
    const answer: Answer = { replies: [], outcomes: new Map(), duplicates: [] };
    const done = new Promise<void>((resolve) => {
      const sub = clientConn.subscribe(inbox, {
        callback: (_err, msg) => {
          answer.replies.push(msg);
          if (msg.headers?.get('Cqrs-Status') === 'batch') {
            for (const o of decodeReplyChunk(msg.data)) {
              if (answer.outcomes.has(o.index)) answer.duplicates.push(o.index);
              answer.outcomes.set(o.index, { ok: o.ok, value: taggedJson.decode(o.body) });
            }
          }
          onReply(answer);
          if (answer.outcomes.size >= expected || msg.headers?.get('Cqrs-Status') !== 'batch') {
            sub.unsubscribe();
            resolve();
          }
        },
      });
    });
    const h = headers();
    h.set('Cqrs-Codec', codec);
    clientConn.publish(subject, body, { reply: inbox, headers: h });
    await within(10_000, done);
    return answer;
  }

  /** The single error reply a batch refused whole got. */
  function refusal(answer: Answer): Record<string, unknown> {
    expect(answer.replies).toHaveLength(1);
    const reply = answer.replies[0] as Msg;
    expect(reply.headers?.get('Cqrs-Status')).toBe('error');
    expect(reply.headers?.get('Cqrs-Codec')).toBe('tagged-json/1+batch/1');
    return taggedJson.decode(reply.data) as Record<string, unknown>;
  }

  beforeAll(async () => {
    serverConn = await connect({ servers: nats?.url ?? '' });
    clientConn = await connect({ servers: nats?.url ?? '' });
    newGate();
    const queries = new QueryBus();
    queries.registerHandler(Echo, (input) => input);
    queries.registerHandler(Who, (_input, ctx) => ({ ...ctx.metadata }));
    queries.registerHandler(Big, (input) => 'x'.repeat(input.kb * 1024));
    queries.registerHandler(Gated, async (input, ctx) => {
      started.push(input.n);
      ctx.signal.addEventListener('abort', () => abortedSignals.push(input.n));
      await gate.opened;
      return `gated ${input.n}`;
    });
    const commands = new CommandBus({ middleware: [validation()] });
    commands.registerHandler(Create, (input) => input.id);
    commands.registerHandler(Explode, (input) => {
      throw Object.assign(new Error(`exploded ${input.n}`), { code: 'E_BOOM' });
    });
    servers = [
      serve(serverConn, queries, {
        prefix,
        maxBatchSize: 8,
        metadata: (metadata) => {
          if (metadata.user === 'banned') throw new Error('banned user');
          return metadata;
        },
      }),
      serve(serverConn, commands, { prefix }),
    ];
    await serverConn.flush();
  });

  afterAll(async () => {
    gate?.open();
    await Promise.all(servers.map((s) => s.stop()));
    await clientConn?.close();
    await serverConn?.close();
    await nats?.stop();
  });

  it('answers each call of a batch on its own: results, handler errors, validation errors, bad inputs', async () => {
    const server = servers[1] as NatsServer;
    const before = server.stats;
    const calls: RawCall[] = [
      { input: { id: 1 } },
      { input: { id: 0 } }, // fails the schema
      { input: { id: 3 } },
      { raw: Buffer.from('{"id":') }, // not JSON: this call alone is malformed
      { input: { id: 5 }, t: 0 }, // a bad deadline: this call alone is malformed
      { input: { id: 6 } },
    ];
    const answer = await send(`${prefix}.cmd.Create`, batchBody(calls), calls.length);
    expect(answer.duplicates).toEqual([]);
    const o = answer.outcomes;
    expect(o.get(0)).toEqual({ ok: true, value: 1 });
    expect(o.get(2)).toEqual({ ok: true, value: 3 });
    expect(o.get(5)).toEqual({ ok: true, value: 6 });
    expect(o.get(1)).toMatchObject({
      ok: false,
      value: { t: 'error', code: 'VALIDATION', cqrs: { handler: 'Create' } },
    });
    expect(o.get(3)).toMatchObject({
      ok: false,
      value: { code: 'VALIDATION', message: expect.stringMatching(/^Create: malformed request: .*JSON/) },
    });
    expect(o.get(4)).toMatchObject({
      ok: false,
      value: {
        code: 'VALIDATION',
        message: expect.stringMatching(/^Create: malformed request: bad deadline 0/),
      },
    });
    for (const reply of answer.replies) {
      expect(reply.headers?.get('Cqrs-Status')).toBe('batch');
      expect(reply.headers?.get('Cqrs-Codec')).toBe('tagged-json/1+batch/1');
    }
    // Counted as calls, not messages.
    expect(server.stats).toEqual({
      received: before.received + 6,
      succeeded: before.succeeded + 3,
      failed: before.failed + 3,
      malformed: before.malformed + 2,
      inFlight: 0,
    });
    expect(server.batchStats.calls).toBeGreaterThanOrEqual(6);
  });

  it('gives each call its own error envelope, the handler’s error as its cause', async () => {
    const calls = [1, 2, 3].map((n) => ({ input: { n } }));
    const answer = await send(`${prefix}.cmd.Explode`, batchBody(calls), 3);
    for (const n of [1, 2, 3]) {
      expect(answer.outcomes.get(n - 1)).toMatchObject({
        ok: false,
        value: {
          code: 'HANDLER_FAILED',
          message: `Explode failed: exploded ${n}`,
          cause: { message: `exploded ${n}`, code: 'E_BOOM' },
        },
      });
    }
  });

  it('carries each call’s own metadata, through the node’s metadata policy call by call', async () => {
    const calls: RawCall[] = [
      { input: {}, md: { correlationId: 'c-1' } },
      { input: {}, md: { user: 'banned' } },
      { input: {} },
      {
        input: {},
        md: { correlationId: 'c-4', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      },
    ];
    const answer = await send(`${prefix}.qry.Who`, batchBody(calls), 4);
    expect(answer.outcomes.get(0)).toEqual({ ok: true, value: { correlationId: 'c-1' } });
    expect(answer.outcomes.get(1)).toMatchObject({
      ok: false,
      value: { code: 'VALIDATION', message: 'Who: metadata refused: banned user' },
    });
    expect(answer.outcomes.get(2)).toEqual({ ok: true, value: {} });
    expect(answer.outcomes.get(3)).toEqual({ ok: true, value: calls[3]?.md });
  });

  it('sends the outcomes that are ready in a first chunk while the others still run', async () => {
    newGate();
    const calls: RawCall[] = [{ input: 'a' }, { input: 'b' }, { input: 'c' }];
    const echoes = send(`${prefix}.qry.Echo`, batchBody(calls), 3);
    // The Gated calls wait for the gate: their outcomes cannot be in the first chunk.
    const gatedCalls = [1, 2].map((n) => ({ input: { n } }));
    let firstChunk: number[] | undefined;
    const gated = send(
      `${prefix}.qry.Gated`,
      batchBody([...gatedCalls, { raw: Buffer.from('{') }]),
      3,
      undefined,
      (a) => {
        if (firstChunk === undefined) {
          firstChunk = [...a.outcomes.keys()];
          gate.open();
        }
      },
    );
    expect((await echoes).outcomes.get(2)).toEqual({ ok: true, value: 'c' });
    const answer = await gated;
    // The refused input (index 2) was answered at once, before the gated calls settled.
    expect(firstChunk).toEqual([2]);
    expect(answer.replies.length).toBeGreaterThanOrEqual(2);
    expect(answer.outcomes.get(0)).toEqual({ ok: true, value: 'gated 1' });
    expect(answer.outcomes.get(1)).toEqual({ ok: true, value: 'gated 2' });
  });

  it('answers OVERLOADED for each call beyond the node’s maxInFlight, counted per call', async () => {
    newGate();
    const own = `${prefix}.over`;
    const bus = new QueryBus();
    bus.registerHandler(Gated, async (input) => {
      await gate.opened;
      return `gated ${input.n}`;
    });
    const server = serve(serverConn, bus, { prefix: own, maxInFlight: 3 });
    await serverConn.flush();
    const calls = [0, 1, 2, 3, 4].map((n) => ({ input: { n } }));
    const pending = send(`${own}.qry.Gated`, batchBody(calls), 5, undefined, (a) => {
      if (a.outcomes.size === 2) gate.open();
    });
    const answer = await pending;
    for (const i of [3, 4]) {
      expect(answer.outcomes.get(i)).toMatchObject({
        ok: false,
        value: { code: 'OVERLOADED', message: 'Gated: 3 calls in flight on this node' },
      });
    }
    for (const i of [0, 1, 2]) expect(answer.outcomes.get(i)).toEqual({ ok: true, value: `gated ${i}` });
    expect(server.stats).toEqual({ received: 5, succeeded: 3, failed: 2, malformed: 0, inFlight: 0 });
    await server.stop();
  });

  it('answers TIMEOUT for a call past its own deadline, once, and aborts its handler', async () => {
    newGate();
    const server = servers[0] as NatsServer;
    const before = server.stats;
    const calls: RawCall[] = [{ input: { n: 101 }, t: 60 }, { input: { n: 102 } }];
    const answer = await send(`${prefix}.qry.Gated`, batchBody(calls), 2, undefined, (a) => {
      if (a.outcomes.has(0)) gate.open();
    });
    expect(answer.outcomes.get(0)).toMatchObject({
      ok: false,
      value: { code: 'TIMEOUT', message: "Gated: the caller's deadline (60 ms) passed" },
    });
    expect(answer.outcomes.get(1)).toEqual({ ok: true, value: 'gated 102' });
    // The handler was told (ctx.signal) at the deadline; nothing it does after is sent a second time.
    await eventually(() => server.stats.inFlight === 0);
    expect(abortedSignals).toContain(101);
    expect(abortedSignals).not.toContain(102);
    expect(answer.duplicates).toEqual([]);
    expect(server.stats).toEqual({
      ...before,
      received: before.received + 2,
      succeeded: before.succeeded + 1,
      failed: before.failed + 1,
    });
  });

  it('lets go of a call past its deadline at once: its handler is told, and no longer holds a place in flight', async () => {
    newGate();
    const server = servers[0] as NatsServer;
    const before = server.stats;
    const answer = await send(`${prefix}.qry.Gated`, batchBody([{ input: { n: 103 }, t: 60 }]), 1);
    expect(answer.outcomes.get(0)).toMatchObject({ ok: false, value: { code: 'TIMEOUT' } });
    // The gate stays shut: the handler still awaits it, but the node is done with the call.
    await eventually(() => abortedSignals.includes(103) && server.stats.inFlight === before.inFlight);
    expect(server.stats).toEqual({
      ...before,
      received: before.received + 1,
      failed: before.failed + 1,
    });
    gate.open();
  });

  it('splits outcomes over several replies within max_payload, and refuses one too big alone', async () => {
    const maxPayload = serverConn.info?.max_payload ?? 1024 * 1024;
    const third = Math.floor(maxPayload / 1024 / 3);
    const calls: RawCall[] = [
      { input: { kb: third } },
      { input: { kb: third } },
      { input: { kb: third } },
      { input: { kb: Math.ceil(maxPayload / 1024) + 1 } },
      { input: { kb: 1 } },
    ];
    const answer = await send(`${prefix}.qry.Big`, batchBody(calls), 5);
    for (const i of [0, 1, 2])
      expect(answer.outcomes.get(i)).toEqual({ ok: true, value: 'x'.repeat(third * 1024) });
    expect(answer.outcomes.get(4)).toEqual({ ok: true, value: 'x'.repeat(1024) });
    expect(answer.outcomes.get(3)).toMatchObject({
      ok: false,
      value: {
        code: 'NOT_CLONEABLE',
        message: expect.stringMatching(
          /^Big: the result cannot be sent \(\d+ bytes\): over the connection's max_payload$/,
        ),
      },
    });
    // Settled together, they still could not share one reply.
    expect(answer.replies.length).toBeGreaterThanOrEqual(2);
    for (const reply of answer.replies) expect(reply.data.byteLength + 100).toBeLessThanOrEqual(maxPayload);
  });

  it('refuses a malformed envelope whole with a precise VALIDATION, and goes on serving', async () => {
    const server = servers[0] as NatsServer;
    const before = server.stats;
    const bodies: [string | Uint8Array, RegExp][] = [
      ['no descriptor line', /^Echo: malformed batch: no descriptor line/],
      ['{"x":1}\n', /^Echo: malformed batch: the descriptor line is not a JSON array/],
      ['[[2],[2]]\nabc', /^Echo: malformed batch: entry 1: its part runs past the end of the body/],
      ['[[1]]\n11', /^Echo: malformed batch: the parts take 1 bytes, the body holds 2 after the descriptor/],
      ['[]\n', /^Echo: malformed batch: it holds no call/],
    ];
    for (const [body, message] of bodies) {
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      const err = refusal(await send(`${prefix}.qry.Echo`, data, 1));
      expect(err, String(body)).toMatchObject({ t: 'error', code: 'VALIDATION', cqrs: { handler: 'Echo' } });
      expect(err.message, String(body)).toMatch(message);
    }
    expect(server.stats).toEqual({
      ...before,
      received: before.received + 5,
      failed: before.failed + 5,
      malformed: before.malformed + 5,
    });
    const ok = await send(`${prefix}.qry.Echo`, batchBody([{ input: 1 }, { input: 2 }]), 2);
    expect([...ok.outcomes.values()]).toEqual([
      { ok: true, value: 1 },
      { ok: true, value: 2 },
    ]);
  });

  it('answers random bodies (error replies or outcomes) and never crashes or hangs', async () => {
    const server = servers[0] as NatsServer;
    const bodies = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 80 }),
        fc
          .tuple(
            fc.array(fc.array(fc.oneof(fc.nat(6), fc.jsonValue()), { maxLength: 3 }), { maxLength: 5 }),
            fc.string(),
          )
          .map(([entries, rest]) => Buffer.from(`${JSON.stringify(entries)}\n${rest}`)),
      ),
      { numRuns: 60, seed: 7 },
    );
    for (const body of bodies) {
      // Whatever came back first: one error reply, or a chunk of outcomes (then the rest follows).
      const answer = await send(`${prefix}.qry.Echo`, body, 1);
      const first = answer.replies[0] as Msg;
      expect(['error', 'batch']).toContain(first.headers?.get('Cqrs-Status'));
    }
    await eventually(() => server.stats.inFlight === 0);
    const ok = await send(`${prefix}.qry.Echo`, batchBody([{ input: 'still' }, { input: 'serving' }]), 2);
    expect(ok.outcomes.get(1)).toEqual({ ok: true, value: 'serving' });
  });

  it('refuses a batch over maxBatchSize whole, counting its calls, running none', async () => {
    const server = servers[0] as NatsServer;
    const before = server.stats;
    const calls = Array.from({ length: 9 }, (_, n) => ({ input: { n } }));
    const startedBefore = started.length;
    const err = refusal(await send(`${prefix}.qry.Gated`, batchBody(calls), 9));
    expect(err).toMatchObject({
      code: 'VALIDATION',
      message: "Gated: a batch of 9 calls, over this node's maxBatchSize of 8",
    });
    expect(started.length).toBe(startedBefore);
    expect(server.stats).toEqual({
      ...before,
      received: before.received + 9,
      failed: before.failed + 9,
      malformed: before.malformed + 9,
    });
  });

  it('refuses a batch in another codec unread, naming both', async () => {
    const err = refusal(await send(`${prefix}.qry.Echo`, Buffer.from('[[1]]\n1'), 1, 'json/1+batch/1'));
    expect(err).toMatchObject({
      code: 'VALIDATION',
      message: 'Echo: this node speaks tagged-json/1, the batch is json/1',
    });
  });

  it('still serves single requests (a client that never batches) beside batches', async () => {
    const h = headers();
    h.set('Cqrs-Codec', 'tagged-json/1');
    h.set('Cqrs-Metadata', '{"correlationId":"single"}');
    const [single, batch] = await Promise.all([
      clientConn.request(`${prefix}.qry.Who`, taggedJson.encode({}), { timeout: 5_000, headers: h }),
      send(
        `${prefix}.qry.Who`,
        batchBody([{ input: {}, md: { correlationId: 'batched' } }, { input: {} }]),
        2,
      ),
    ]);
    expect(single.headers?.get('Cqrs-Status')).toBe('ok');
    expect(single.headers?.get('Cqrs-Codec')).toBe('tagged-json/1');
    expect(taggedJson.decode(single.data)).toEqual({ correlationId: 'single' });
    expect(batch.outcomes.get(0)).toEqual({ ok: true, value: { correlationId: 'batched' } });
  });

  it('stop() answers every call of a batch it took, then resolves; the next batch finds no responders', async () => {
    newGate();
    const own = `${prefix}.stop`;
    const bus = new QueryBus();
    bus.registerHandler(Gated, async (input) => {
      await gate.opened;
      return `gated ${input.n}`;
    });
    const server = serve(serverConn, bus, { prefix: own });
    await serverConn.flush();
    const calls = [0, 1, 2, 3].map((n) => ({ input: { n } }));
    const pending = send(`${own}.qry.Gated`, batchBody(calls), 4);
    await eventually(() => server.stats.inFlight === 4);
    let stopped = false;
    const stopping = server.stop().then(() => {
      stopped = true;
    });
    // stop() waits for the calls it holds.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    gate.open();
    const answer = await pending;
    await within(5_000, stopping);
    expect([...answer.outcomes.entries()].sort(([a], [b]) => a - b)).toEqual(
      [0, 1, 2, 3].map((n) => [n, { ok: true, value: `gated ${n}` }]),
    );
    expect(server.stats).toEqual({ received: 4, succeeded: 4, failed: 0, malformed: 0, inFlight: 0 });
    const after = await send(`${own}.qry.Gated`, batchBody(calls), 4);
    expect(after.replies[0]?.headers?.code).toBe(503);
  });
});
