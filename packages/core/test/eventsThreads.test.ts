/**
 * The event bus with worker subscribers on real threads: a subscriber that crashes its thread, times out,
 * throws or returns garbage fails alone; handlers publish from pool threads (one thread is enough); a
 * process manager executes a command from a subscriber; per-key order per subscriber; exact metrics;
 * `ready()`; nesting bounds. Runs against the built output (`node build.mjs --fast` first).
 */
import { BroadcastChannel } from 'node:worker_threads';
import {
  circuitBreaker,
  EventBus,
  healthSnapshot,
  inWorker,
  isCqrsError,
  timeout,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { closeEventBuses, eventBuses, eventHandlers } from './eventBuses.js';
import {
  Echoed,
  Loose,
  Noted,
  note,
  noted,
  noteLog,
  OrderPlaced,
  PlaceOrder,
  ReserveStock,
} from './fixtures/eventMessages.js';
import { LINES } from './fixtures/threadLogger.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

afterEach(closeEventBuses);

const worker = (exportName: string) => inWorker(eventHandlers, exportName);

describe('worker subscribers', () => {
  it('fan out with inline ones; each failure is isolated and rebuilt across the thread boundary', async () => {
    const { events, deadLetters } = eventBuses();
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 's1', (event) => note(event, 's1', false));
    events.subscribe(Noted, 's2', worker('noteInThread'));
    await events.ready();
    const log = noteLog(1, 3);
    const report = await events.publish(Noted, { seq: 0, log, subscribers: 3, fail: ['s2'], tag: 'x' });
    expect(report.delivered).toEqual(['s0', 's1']);
    const error = report.failed[0]?.error;
    expect(report.failed[0]?.subscriber).toBe('s2');
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect(error?.message).toBe('Noted:s2 failed: s2 fails publish 0 on purpose');
    expect(error?.cause).toMatchObject({ name: 'NoteError', code: 'E_NOTE', subscriber: 's2', seq: 0 });
    expect(deadLetters.map((f) => f.subscriber)).toEqual(['s2']);
    for (let s = 0; s < 3; s++) expect(noted(log, 0, 3, s).attempts).toBe(1);
  });

  it('a subscriber that crashes its thread, times out or throws garbage fails alone; returned garbage is dropped', async () => {
    const { events, deadLetters, pool } = eventBuses({ threads: 2 });
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 'crash', worker('crash'));
    events.subscribe(Noted, 'spin', worker('spin'), { middleware: [timeout(50, { graceMs: 10 })] });
    events.subscribe(Noted, 'throwGarbage', worker('throwGarbage'));
    events.subscribe(Noted, 'returnGarbage', worker('returnGarbage'));
    events.subscribe(Noted, 's1', worker('noteInThread'));
    await events.ready();
    const log = noteLog(3, 2);
    for (let seq = 0; seq < 3; seq++) {
      const report = await events.publish(Noted, { seq, log, subscribers: 2 });
      expect(report.delivered).toEqual(['s0', 'returnGarbage', 's1']);
      expect(report.failed.map((f) => [f.subscriber, f.error.code])).toEqual([
        ['crash', 'WORKER_CRASHED'],
        ['spin', 'TIMEOUT'],
        ['throwGarbage', 'HANDLER_FAILED'],
      ]);
      // What it threw cannot cross a thread: its description does.
      expect(report.failed[2]?.error.message).toBe('Noted:throwGarbage failed: [not cloneable: Object]');
    }
    expect(deadLetters).toHaveLength(9);
    const metrics = events.getMetrics().handlers;
    expect(metrics['Noted:crash']).toMatchObject({ executions: 3, failures: 3 });
    expect(metrics['Noted:crash']?.failuresByCode).toEqual({ WORKER_CRASHED: 3 });
    expect(metrics['Noted:spin']?.failuresByCode).toEqual({ TIMEOUT: 3 });
    expect(metrics['Noted:returnGarbage']).toMatchObject({ executions: 3, failures: 0 });
    expect(metrics['Noted:s0']).toMatchObject({ executions: 3, failures: 0 });
    // The pool replaced the threads it lost and still runs calls.
    expect(pool.threads).toBeGreaterThan(0);
    const after = await events.publish(Noted, { seq: 0, log: noteLog(1, 2), subscribers: 2 });
    expect(after.delivered).toContain('s1');
  });

  it('a payload that cannot cross to a thread fails the worker subscribers with NOT_CLONEABLE, not the inline ones', async () => {
    const { events, deadLetters } = eventBuses();
    const seen: unknown[] = [];
    events.subscribe(Loose, 'inline', (event) => void seen.push(event.data));
    events.subscribe(Loose, 'thread', worker('takeLoose'));
    const fn = (): number => 1;
    const report = await events.publish(Loose, { data: fn });
    expect(report.delivered).toEqual(['inline']);
    expect(report.failed.map((f) => [f.subscriber, f.error.code])).toEqual([['thread', 'NOT_CLONEABLE']]);
    expect(report.failed[0]?.error.message).toMatch(/^Loose:thread: /);
    expect(seen).toEqual([fn]);
    expect(deadLetters).toHaveLength(1);
    // The thread is fine: plain data goes through.
    await expect(events.publish(Loose, { data: { n: 1 } })).resolves.toMatchObject({
      delivered: ['inline', 'thread'],
    });
  });

  it('ready() names a subscriber whose export cannot be loaded; a publish lists it failed, the others delivered', async () => {
    const { events } = eventBuses();
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 'missing', worker('noSuchExport'));
    events.subscribe(Noted, 'wrong', inWorker(fixtureUrl('handlers'), 'square'));
    const err = await rejectionWith(events.ready(), 'INVALID_REGISTRATION');
    expect(err.message).toMatch(
      /^cannot load 2 worker handler\(s\): Noted:missing: .*noSuchExport.*; Noted:wrong: .*handles 'Square', not 'Noted'$/,
    );
    const report = await events.publish(Noted, { seq: 0, log: noteLog(1, 1), subscribers: 1 });
    expect(report.delivered).toEqual(['s0']);
    expect(report.failed.map((f) => [f.subscriber, f.error.code])).toEqual([
      ['missing', 'INVALID_REGISTRATION'],
      ['wrong', 'INVALID_REGISTRATION'],
    ]);
  });

  it('ctx.logger of a worker subscriber carries the subscriber', async () => {
    const pool = new WorkerPool({ threads: 1, threadLogger: { module: fixtureUrl('threadLogger') } });
    const lines: Record<string, unknown>[] = [];
    const channel = new BroadcastChannel(LINES);
    channel.onmessage = (event) => lines.push((event as MessageEvent).data as Record<string, unknown>);
    try {
      const events = new EventBus({ pool });
      events.subscribe(Noted, 'teller', inWorker(fixtureUrl('eventHandlers'), 'logNoted'));
      await events.publish(
        Noted,
        { seq: 0, log: noteLog(1, 1), subscribers: 1 },
        { metadata: { correlationId: 'c-5' } },
      );
      const deadline = performance.now() + 5000;
      while (lines.length === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(lines).toEqual([
        expect.objectContaining({
          handler: 'Noted',
          kind: 'event',
          subscriber: 'teller',
          correlationId: 'c-5',
          msg: 'noted',
        }),
      ]);
      await events.close();
    } finally {
      channel.close();
      await pool.close();
    }
  });
});

describe('publishing from handlers', () => {
  it('a worker command handler publishes with one thread: worker subscribers run on its thread, no deadlock', async () => {
    const { commands, events, deadLetters } = eventBuses({ threads: 1 });
    commands.registerHandler(PlaceOrder, worker('placeOrder'));
    commands.registerHandler(ReserveStock, worker('reserveStock'));
    const projected: number[] = [];
    events.subscribe(OrderPlaced, 'read-model', (event) => void projected.push(event.orderId));
    // The process manager, twice: in the thread and inline, each reserving stock through the command bus.
    events.subscribe(OrderPlaced, 'stock', worker('stockManager'));
    events.subscribe(OrderPlaced, 'stock-inline', async (event, ctx) => {
      await ctx.commands.execute(ReserveStock, { qty: event.qty, stock: event.stock });
    });
    events.subscribe(OrderPlaced, 'broken', () => {
      throw new Error('projection down');
    });
    const stock = new Int32Array(new SharedArrayBuffer(4));
    Atomics.store(stock, 0, 100);
    const bounded = { signal: AbortSignal.timeout(10_000) };
    const results = await Promise.all(
      [1, 2, 3].map((orderId) =>
        commands.execute(PlaceOrder, { orderId, sku: 'kbd', qty: 2, stock }, bounded),
      ),
    );
    for (const result of results) {
      expect(result.delivered).toEqual(['read-model', 'stock', 'stock-inline']);
      expect(result.failed).toEqual([{ subscriber: 'broken', code: 'HANDLER_FAILED', isCqrs: true }]);
    }
    expect(projected.sort()).toEqual([1, 2, 3]);
    expect(Atomics.load(stock, 0)).toBe(100 - 3 * 2 * 2);
    expect(deadLetters.map((f) => f.subscriber)).toEqual(['broken', 'broken', 'broken']);
    expect(commands.getMetrics().handlers.ReserveStock).toMatchObject({ executions: 6, failures: 0 });
  });

  it('a thread publishing an event nobody subscribed to gets delivered: []; a bad payload VALIDATION', async () => {
    const { commands } = eventBuses({ threads: 1 });
    commands.registerHandler(PlaceOrder, worker('placeOrder'));
    const stock = new Int32Array(new SharedArrayBuffer(4));
    await expect(commands.execute(PlaceOrder, { orderId: 1, sku: 'a', qty: 1, stock })).resolves.toEqual({
      delivered: [],
      failed: [],
    });
    const err = await rejectionWith(
      commands.execute(PlaceOrder, { orderId: 1, sku: 'a', qty: 0, stock }),
      'HANDLER_FAILED',
    );
    expect(isCqrsError(err.cause, 'VALIDATION')).toBe(true);
  });

  it('a subscriber publishing its own event again is stopped by maxNestingDepth', async () => {
    const { events, pool } = eventBuses({ threads: 1 });
    events.subscribe(Echoed, 'again', worker('echoAgain'));
    const report = await events.publish(Echoed, { level: 0 });
    expect(report.delivered).toEqual([]);
    // Each level rethrows the failure of the level below it (the chain of causes is cut where it crosses a
    // thread; the message keeps the root's words).
    const error = report.failed[0]?.error;
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect(error?.message).toMatch(/Echoed: nested deeper than 32 levels/);
    expect(events.getMetrics().handlers['Echoed:again']).toMatchObject({ executions: 33, failures: 33 });
    expect(pool.inFlight).toBe(0);
  });
});

describe('strategies on threads', () => {
  it("'parallel' runs worker subscribers at the same time, on both threads", async () => {
    const { events } = eventBuses({ threads: 2 });
    events.subscribe(Noted, 'a', worker('rendezvous'));
    events.subscribe(Noted, 'b', worker('rendezvous'));
    // Each waits until both have started: they meet only if they run at once.
    const report = await events.publish(Noted, { seq: 0, log: noteLog(1, 2), subscribers: 2 });
    expect(report).toMatchObject({ delivered: ['a', 'b'], failed: [] });
  });

  it("'sequential' starts each worker subscriber after the one before it ended", async () => {
    const { events } = eventBuses({ threads: 2 });
    for (const s of ['s0', 's1', 's2']) events.subscribe(Noted, s, worker('noteInThread'));
    const log = noteLog(1, 3);
    const report = await events.publish(
      Noted,
      { seq: 0, log, subscribers: 3, ms: 2, fail: ['s1'] },
      { strategy: 'sequential' },
    );
    expect(report.delivered).toEqual(['s0', 's2']);
    expect(noted(log, 0, 3, 1).start).toBeGreaterThan(noted(log, 0, 3, 0).end);
    expect(noted(log, 0, 3, 2).start).toBeGreaterThan(noted(log, 0, 3, 1).end);
  });
});

describe('per-key order per subscriber', () => {
  it('calls of one key start in publish order and never overlap, per subscriber, with other keys in parallel', async () => {
    const { events } = eventBuses({ threads: 2 });
    const byKey = (event: { key?: string | number | undefined }) => event.key;
    events.subscribe(Noted, 's0', worker('noteInThread'), { orderingKey: byKey });
    events.subscribe(Noted, 's1', (event) => note(event, 's1', false), { orderingKey: byKey });
    events.subscribe(Noted, 's2', worker('noteInThread'));
    const publishes = 60;
    const keys = Array.from({ length: publishes }, (_, i) => ['a', 'b', 7][i % 3] as string | number);
    const log = noteLog(publishes, 3);
    const reports = await Promise.all(
      keys.map((key, seq) =>
        events.publish(
          Noted,
          { seq, key, log, subscribers: 3, ms: (seq * 7) % 3 },
          { strategy: seq % 2 === 0 ? 'parallel' : 'sequential' },
        ),
      ),
    );
    for (const report of reports) expect(report.delivered).toEqual(['s0', 's1', 's2']);
    for (const slot of [0, 1]) {
      const last = new Map<string | number, { seq: number; end: number }>();
      for (let seq = 0; seq < publishes; seq++) {
        const key = keys[seq] as string | number;
        const { start, end } = noted(log, seq, 3, slot);
        const before = last.get(key);
        if (before !== undefined && !(start > before.end)) {
          throw new Error(`s${slot} key ${key}: publish ${seq} started before publish ${before.seq} ended`);
        }
        last.set(key, { seq, end });
      }
    }
    const metrics = events.getMetrics().handlers;
    expect(metrics['Noted:s0']?.ordering).toMatchObject({ waiting: 0, wait: { count: publishes } });
    expect(metrics['Noted:s2']?.ordering).toBeUndefined();
  });
});

describe('metrics', () => {
  it('count every subscriber exactly, whichever thread ran it, under <event>:<subscriber>', async () => {
    const { events } = eventBuses({ threads: 2 });
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 's1', worker('noteInThread'));
    events.subscribe(Noted, 's2', (event) => note(event, 's2', false));
    const publishes = 300;
    const log = noteLog(publishes, 3);
    const failing = (seq: number, slot: number) => (seq * 7 + slot * 3) % 5 === 0;
    const reports = await Promise.all(
      Array.from({ length: publishes }, (_, seq) =>
        events.publish(Noted, {
          seq,
          log,
          subscribers: 3,
          fail: [0, 1, 2].filter((slot) => failing(seq, slot)).map((slot) => `s${slot}`),
        }),
      ),
    );
    const metrics = events.getMetrics();
    let failures = 0;
    for (const slot of [0, 1, 2]) {
      let expected = 0;
      for (let seq = 0; seq < publishes; seq++) if (failing(seq, slot)) expected++;
      failures += expected;
      expect(metrics.handlers[`Noted:s${slot}`]).toMatchObject({
        executions: publishes,
        failures: expected,
        inFlight: 0,
      });
      expect(metrics.handlers[`Noted:s${slot}`]?.failuresByCode).toEqual({ HANDLER_FAILED: expected });
    }
    expect(metrics).toMatchObject({ executions: 3 * publishes, failures, inFlight: 0 });
    expect(reports.reduce((n, r) => n + r.failed.length, 0)).toBe(failures);
  });
});

describe('circuit breaker per subscriber', () => {
  it('opens for the failing subscriber only, and healthSnapshot reports it as event:<event>:<subscriber>', async () => {
    const { events, pool, deadLetters } = eventBuses({
      middleware: [circuitBreaker({ failureThreshold: 2, resetAfterMs: 600_000 })],
    });
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 's1', worker('noteInThread'));
    const log = noteLog(4, 2);
    const codes: string[] = [];
    for (let seq = 0; seq < 4; seq++) {
      const report = await events.publish(Noted, { seq, log, subscribers: 2, fail: ['s1'] });
      expect(report.delivered).toEqual(['s0']);
      codes.push(report.failed[0]?.error.code as string);
    }
    expect(codes).toEqual(['HANDLER_FAILED', 'HANDLER_FAILED', 'CIRCUIT_OPEN', 'CIRCUIT_OPEN']);
    // Refused by the breaker: it never ran for the last two publishes.
    expect(noted(log, 3, 2, 1).attempts).toBe(0);
    expect(deadLetters).toHaveLength(4);
    const health = healthSnapshot({ pool, buses: [events] });
    expect(health.status).toBe('degraded');
    expect(health.circuits).toEqual({ 'event:Noted:s0': 'closed', 'event:Noted:s1': 'open' });
    expect(health.handlers).toBe(2);
  });
});

describe('close()', () => {
  it('drains publishes whose worker subscribers are still running, then the pool closes', async () => {
    const { events, pool } = eventBuses({ threads: 2 });
    events.subscribe(Noted, 's0', worker('noteInThread'));
    events.subscribe(Noted, 's1', worker('noteInThread'));
    const log = noteLog(8, 2);
    const inFlight = Array.from({ length: 8 }, (_, seq) =>
      events.publish(
        Noted,
        { seq, log, subscribers: 2, ms: 20 },
        { strategy: seq % 2 ? 'sequential' : 'parallel' },
      ),
    );
    await events.close();
    // Every publish accepted before close() was delivered in full before close() resolved.
    expect(events.pending).toBe(0);
    for (let seq = 0; seq < 8; seq++) {
      for (const slot of [0, 1]) expect(noted(log, seq, 2, slot).end).toBeGreaterThan(0);
    }
    for (const report of await Promise.all(inFlight)) expect(report.delivered).toEqual(['s0', 's1']);
    await rejectionWith(events.publish(Noted, { seq: 0, log, subscribers: 2 }), 'CLOSED');
    await pool.close();
    expect(pool.inFlight).toBe(0);
  });
});
