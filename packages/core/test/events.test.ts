/**
 * The event bus on the main thread: fan-out, validation once per publish, isolation of a failing
 * subscriber, `onFailure` exactly once after the subscriber's own retry gave up, sequential and parallel
 * publishes, refusals, registration errors. Worker subscribers are in eventsThreads.test.ts.
 */
import { Writable } from 'node:stream';
import type { CqrsError, EventFailure, HandlerContext, Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  caching,
  defineCommand,
  defineEvent,
  EventBus,
  handle,
  inWorker,
  isCqrsError,
  logging,
  retry,
} from '@cqrs-pool/core';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Noted, NoteError, note, noted, noteLog } from './fixtures/eventMessages.js';
import { rejectionWith } from './rejectionWith.js';

type NotedEvent = z.output<typeof Noted.payload>;

/** An inline subscriber `name` of Noted that notes the event (asleep for `ms`). */
const noting = (name: string) => (event: NotedEvent) => note(event, name, false);

function notedBus(subscribers: number, options: ConstructorParameters<typeof EventBus>[0] = {}) {
  const failures: EventFailure[] = [];
  const events = new EventBus({ onFailure: (f) => void failures.push(f), ...options });
  for (let s = 0; s < subscribers; s++) events.subscribe(Noted, `s${s}`, noting(`s${s}`));
  return { events, failures };
}

async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

describe('EventBus.publish', () => {
  it('delivers to every subscriber, in subscription order in the report, the payload parsed once', async () => {
    const events = new EventBus();
    const seen: { subscriber: string; tag: string | undefined; ctx: Partial<HandlerContext> }[] = [];
    const watch = (subscriber: string) => (event: NotedEvent, ctx: HandlerContext) => {
      seen.push({
        subscriber,
        tag: event.tag,
        ctx: { name: ctx.name, kind: ctx.kind, subscriber: ctx.subscriber, metadata: ctx.metadata },
      });
    };
    events.subscribe(Noted, 'read-model', watch('read-model'));
    events.subscribe(Noted, 'mailer', handle(Noted, watch('mailer')));
    events.subscribe(Noted, 'audit', async (event, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      watch('audit')(event, ctx);
    });
    const log = noteLog(1, 1);
    const report = await events.publish(
      Noted,
      { seq: 0, log, subscribers: 1, tag: 'abc' },
      { metadata: { correlationId: 'c-1' } },
    );
    expect(report).toEqual({ event: 'Noted', delivered: ['read-model', 'mailer', 'audit'], failed: [] });
    expect(seen.map((s) => s.subscriber).sort()).toEqual(['audit', 'mailer', 'read-model']);
    for (const s of seen) {
      expect(s.tag).toBe('ABC');
      expect(s.ctx).toEqual({
        name: 'Noted',
        kind: 'event',
        subscriber: s.subscriber,
        metadata: { correlationId: 'c-1' },
      });
    }
    expect(events.getRegisteredEvents()).toEqual(['Noted']);
  });

  it('publishes by name to the subscribers of that event, with the same validation', async () => {
    const { events } = notedBus(2);
    const log = noteLog(1, 2);
    await expect(events.publish('Noted', { seq: 0, log, subscribers: 2 })).resolves.toMatchObject({
      delivered: ['s0', 's1'],
    });
    await rejectionWith(events.publish('Noted', { seq: 'x' }), 'VALIDATION');
  });

  it('refuses an invalid payload with VALIDATION before any subscriber runs, and counts nothing', async () => {
    const { events } = notedBus(3);
    const log = noteLog(1, 3);
    const err = await rejectionWith(
      events.publish(Noted, { seq: -1, log, subscribers: 3 } as never),
      'VALIDATION',
    );
    expect(err.message).toMatch(/^Noted: invalid payload at seq/);
    expect(err.issues?.length).toBeGreaterThan(0);
    expect(Atomics.load(log, 0)).toBe(0);
    expect(events.getMetrics()).toMatchObject({ executions: 0, failures: 0 });
  });

  it('validates with async refinements too', async () => {
    const Checked = defineEvent('Checked', {
      payload: z.object({ n: z.number() }).refine(async (v) => v.n > 0, 'n must be positive'),
    });
    const events = new EventBus();
    let ran = 0;
    events.subscribe(Checked, 'a', () => void ran++);
    await expect(events.publish(Checked, { n: 1 })).resolves.toMatchObject({ delivered: ['a'] });
    await rejectionWith(events.publish(Checked, { n: -1 }), 'VALIDATION');
    expect(ran).toBe(1);
    await events.close();
    expect(events.pending).toBe(0);
  });

  it('delivers an event nobody subscribed to to nobody, but refuses an unknown name', async () => {
    const Lonely = defineEvent('Lonely', { payload: z.object({ id: z.number() }) });
    const events = new EventBus();
    await expect(events.publish(Lonely, { id: 1 })).resolves.toEqual({
      event: 'Lonely',
      delivered: [],
      failed: [],
    });
    await rejectionWith(events.publish(Lonely, { id: 'x' } as never), 'VALIDATION');
    const err = await rejectionWith(events.publish('Lonely', { id: 1 }), 'HANDLER_NOT_FOUND');
    expect(err.message).toBe("no subscriber of event 'Lonely'");
  });

  it('refuses a definition of another kind and options that are not what they claim', async () => {
    const { events } = notedBus(1);
    const Cmd = defineCommand('Cmd', { input: z.object({}) });
    await rejectionWith(events.publish(Cmd as never, {}), 'HANDLER_NOT_FOUND');
    const log = noteLog(1, 1);
    const payload = { seq: 0, log, subscribers: 1 };
    await rejectionWith(events.publish(Noted, payload, { strategy: 'fanout' as never }), 'VALIDATION');
    await rejectionWith(events.publish(Noted, payload, { signal: 'soon' as never }), 'VALIDATION');
    await rejectionWith(events.publish(Noted, payload, 'x' as never), 'VALIDATION');
    expect(Atomics.load(log, 0)).toBe(0);
  });
});

describe('isolation of failing subscribers', () => {
  it('runs the others, reports the failure with its cause, and hands it to onFailure once', async () => {
    const { events, failures } = notedBus(4);
    const log = noteLog(1, 4);
    const report = await events.publish(
      Noted,
      { seq: 0, log, subscribers: 4, fail: ['s1', 's3'] },
      { metadata: { correlationId: 'c-9' } },
    );
    expect(report.delivered).toEqual(['s0', 's2']);
    expect(report.failed.map((f) => f.subscriber)).toEqual(['s1', 's3']);
    for (const { subscriber, error } of report.failed) {
      expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
      expect(error.handler).toBe(`Noted:${subscriber}`);
      expect(error.cause).toBeInstanceOf(NoteError);
    }
    // Every subscriber ran exactly once.
    for (let s = 0; s < 4; s++) expect(noted(log, 0, 4, s).attempts).toBe(1);
    expect(failures.map((f) => [f.event, f.subscriber, f.error.code, f.metadata.correlationId])).toEqual([
      ['Noted', 's1', 'HANDLER_FAILED', 'c-9'],
      ['Noted', 's3', 'HANDLER_FAILED', 'c-9'],
    ]);
    expect(failures[0]?.error).toBe(report.failed[0]?.error);
    expect(failures[0]?.payload).toMatchObject({ seq: 0, fail: ['s1', 's3'] });
    const metrics = events.getMetrics();
    expect(metrics).toMatchObject({ executions: 4, failures: 2 });
    expect(metrics.handlers['Noted:s1']).toMatchObject({ executions: 1, failures: 1 });
    expect(metrics.handlers['Noted:s0']).toMatchObject({ executions: 1, failures: 0 });
  });

  it('calls onFailure only after the subscriber’s own retry gave up, once', async () => {
    const failures: EventFailure[] = [];
    const events = new EventBus({ onFailure: (f) => void failures.push(f) });
    const quick = retry({ maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 });
    events.subscribe(Noted, 's0', noting('s0'), { middleware: [quick] });
    events.subscribe(Noted, 's1', noting('s1'));
    const log = noteLog(2, 2);
    // Two failed attempts, then a success: retried to delivery, nothing for onFailure.
    const first = await events.publish(Noted, { seq: 0, log, subscribers: 2, failAttempts: 2 });
    expect(first.delivered).toEqual(['s0']);
    expect(first.failed.map((f) => f.subscriber)).toEqual(['s1']);
    expect(noted(log, 0, 2, 0).attempts).toBe(3);
    expect(failures.map((f) => f.subscriber)).toEqual(['s1']);
    // Always failing: three attempts, then one failure.
    const second = await events.publish(Noted, { seq: 1, log, subscribers: 2, fail: ['s0'] });
    expect(second.failed.map((f) => f.subscriber)).toEqual(['s0']);
    expect(noted(log, 1, 2, 0).attempts).toBe(3);
    expect(failures.map((f) => f.subscriber)).toEqual(['s1', 's0']);
    // Every attempt is an execution.
    expect(events.getMetrics().handlers['Noted:s0']).toMatchObject({ executions: 6, failures: 5 });
  });

  it('waits for an async onFailure before resolving; one that throws or rejects changes nothing', async () => {
    const written: string[] = [];
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l));
        callback();
      },
    });
    let calls = 0;
    const events = new EventBus({
      logger: pino(stream),
      onFailure: async (f) => {
        calls++;
        if (f.subscriber === 's1') throw new Error('dead-letter store down');
        await new Promise((resolve) => setTimeout(resolve, 10));
        written.push(f.subscriber);
      },
    });
    for (const s of ['s0', 's1', 's2']) events.subscribe(Noted, s, noting(s));
    const log = noteLog(1, 3);
    const report = await events.publish(Noted, { seq: 0, log, subscribers: 3, fail: ['s0', 's1', 's2'] });
    expect(report.failed.map((f) => f.subscriber)).toEqual(['s0', 's1', 's2']);
    expect(written.sort()).toEqual(['s0', 's2']);
    expect(calls).toBe(3);
    expect(lines).toEqual([
      expect.objectContaining({
        event: 'Noted',
        subscriber: 's1',
        msg: 'EventBus: onFailure threw for Noted:s1',
      }),
    ]);
  });

  it('reports what a custom middleware rejects with as a CqrsError, its error as cause', async () => {
    const refuse: Middleware = () => () => Promise.reject(new TypeError('no entry'));
    const { events } = notedBus(1);
    events.subscribe(Noted, 's1', noting('s1'), { middleware: [refuse] });
    const log = noteLog(1, 2);
    const report = await events.publish(Noted, { seq: 0, log, subscribers: 2 });
    expect(report.delivered).toEqual(['s0']);
    const error = report.failed[0]?.error as CqrsError;
    expect(isCqrsError(error, 'HANDLER_FAILED')).toBe(true);
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('an aborted publish fails the subscribers still running with ABORTED; the finished ones are delivered', async () => {
    const { events, failures } = notedBus(0);
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    events.subscribe(Noted, 'quick', () => {});
    events.subscribe(Noted, 'slow', () => gate);
    const controller = new AbortController();
    const log = noteLog(1, 1);
    const pending = events.publish(Noted, { seq: 0, log, subscribers: 1 }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 1));
    controller.abort();
    const report = await pending;
    release();
    expect(report.delivered).toEqual(['quick']);
    expect(report.failed.map((f) => [f.subscriber, f.error.code])).toEqual([['slow', 'ABORTED']]);
    expect(failures).toHaveLength(1);
  });
});

describe('strategies', () => {
  it("'sequential' runs one subscriber after another in subscription order, failures included", async () => {
    const { events } = notedBus(4);
    const log = noteLog(1, 4);
    const report = await events.publish(
      Noted,
      { seq: 0, log, subscribers: 4, ms: 2, fail: ['s1'] },
      { strategy: 'sequential' },
    );
    expect(report.delivered).toEqual(['s0', 's2', 's3']);
    for (let s = 1; s < 4; s++) {
      expect(noted(log, 0, 4, s).start).toBeGreaterThan(noted(log, 0, 4, s - 1).end);
    }
  });

  it("'parallel' (the default) starts every subscriber before any ends", async () => {
    const { events } = notedBus(4);
    const log = noteLog(1, 4);
    await events.publish(Noted, { seq: 0, log, subscribers: 4, ms: 5 });
    const starts = [0, 1, 2, 3].map((s) => noted(log, 0, 4, s).start);
    const ends = [0, 1, 2, 3].map((s) => noted(log, 0, 4, s).end);
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
  });

  it('takes the bus default from options.strategy', async () => {
    const { events } = notedBus(3, { strategy: 'sequential' });
    const log = noteLog(1, 3);
    await events.publish(Noted, { seq: 0, log, subscribers: 3, ms: 1 });
    expect(noted(log, 0, 3, 2).start).toBeGreaterThan(noted(log, 0, 3, 1).end);
    expect(() => new EventBus({ strategy: 'random' as never })).toThrow(/options\.strategy/);
  });
});

describe('subscribers that answer synchronously', () => {
  const Tick = defineEvent('Tick', { payload: z.object({ n: z.number() }) });

  it('are delivered in subscription order, counted exactly, and end the publish at once', async () => {
    for (const metrics of [true, false]) {
      const events = new EventBus({ metrics });
      const seen: string[] = [];
      for (const name of ['a', 'b', 'c']) events.subscribe(Tick, name, () => void seen.push(name));
      const first = await events.publish(Tick, { n: 1 });
      expect(first).toEqual({ event: 'Tick', delivered: ['a', 'b', 'c'], failed: [] });
      // Each report is the caller's own: changing one changes neither the bus nor the next report.
      (first.delivered as string[]).push('x');
      await expect(events.publish(Tick, { n: 2 }, { strategy: 'sequential' })).resolves.toEqual({
        event: 'Tick',
        delivered: ['a', 'b', 'c'],
        failed: [],
      });
      expect(seen).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
      expect(events.pending).toBe(0);
      if (metrics) {
        const handlers = events.getMetrics().handlers;
        for (const name of ['a', 'b', 'c']) {
          expect(handlers[`Tick:${name}`]).toMatchObject({ executions: 2, failures: 0, inFlight: 0 });
        }
      }
      await events.close();
    }
  });

  it('mixed with throwing and async ones: each outcome reported, each failure told once', async () => {
    for (const strategy of ['parallel', 'sequential'] as const) {
      const told: string[] = [];
      const events = new EventBus({ onFailure: (f) => void told.push(`${f.subscriber}:${f.error.code}`) });
      events.subscribe(Tick, 'sync', () => 1);
      events.subscribe(Tick, 'throws', () => {
        throw new Error('sync boom');
      });
      events.subscribe(Tick, 'async', async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
      });
      events.subscribe(Tick, 'rejects', () => Promise.reject(new Error('async boom')));
      events.subscribe(Tick, 'last', () => undefined);
      const report = await events.publish(Tick, { n: 1 }, { strategy });
      expect(report.delivered).toEqual(['sync', 'async', 'last']);
      expect(
        report.failed.map((f) => [f.subscriber, f.error.code, (f.error.cause as Error).message]),
      ).toEqual([
        ['throws', 'HANDLER_FAILED', 'sync boom'],
        ['rejects', 'HANDLER_FAILED', 'async boom'],
      ]);
      expect(told.sort()).toEqual(['rejects:HANDLER_FAILED', 'throws:HANDLER_FAILED']);
      const handlers = events.getMetrics().handlers;
      expect(handlers['Tick:throws']).toMatchObject({ executions: 1, failures: 1, inFlight: 0 });
      expect(handlers['Tick:last']).toMatchObject({ executions: 1, failures: 0, inFlight: 0 });
      await events.close();
    }
  });

  it('a subscriber that subscribes another meanwhile: the report lists those the publish ran', async () => {
    const events = new EventBus();
    const ran: string[] = [];
    events.subscribe(Tick, 'first', () => {
      ran.push('first');
      if (ran.length === 1) events.subscribe(Tick, 'late', () => void ran.push('late'));
    });
    events.subscribe(Tick, 'slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      ran.push('slow');
    });
    await expect(events.publish(Tick, { n: 1 })).resolves.toMatchObject({ delivered: ['first', 'slow'] });
    expect(ran).toEqual(['first', 'slow']);
    await expect(events.publish(Tick, { n: 2 })).resolves.toMatchObject({
      delivered: ['first', 'slow', 'late'],
    });
  });
});

describe('EventBus.subscribe', () => {
  it('refuses bad registrations with a clear code', async () => {
    const events = new EventBus();
    events.subscribe(Noted, 'a', () => {});
    const Other = defineEvent('Noted', { payload: z.object({}) });
    const Elsewhere = defineEvent('Elsewhere', { payload: z.object({}) });
    const Cmd = defineCommand('Cmd', { input: z.object({}) });
    const cases: [() => unknown, string, RegExp][] = [
      [() => events.subscribe(Noted, 'a', () => {}), 'DUPLICATE_HANDLER', /Noted:a/],
      [() => events.subscribe(Noted, '', () => {}), 'INVALID_REGISTRATION', /subscriber name/],
      [() => events.subscribe(Noted, 'x:y', () => {}), 'INVALID_REGISTRATION', /without ':'/],
      [() => events.subscribe(Other, 'b', () => {}), 'INVALID_REGISTRATION', /another definition/],
      [
        () => events.subscribe(Cmd as unknown as typeof Noted, 'b', () => {}),
        'INVALID_REGISTRATION',
        /is a command/,
      ],
      [() => events.subscribe(Noted, 'b', 42 as never), 'INVALID_REGISTRATION', /must be a function/],
      [
        () => events.subscribe(Noted, 'b', inWorker('file:///nowhere.js', 'x')),
        'INVALID_REGISTRATION',
        /need a WorkerPool/,
      ],
      [
        () => events.subscribe(Noted, 'b', handle(Elsewhere, () => {}) as never),
        'INVALID_REGISTRATION',
        /handle\(\) value/,
      ],
      [
        () => events.subscribe(Noted, 'b', () => {}, { middleware: [caching({ ttlMs: 1000 })] }),
        'INVALID_REGISTRATION',
        /queries only, not to events/,
      ],
      [
        () => events.subscribe(Noted, 'b', () => {}, { orderingKey: 'id' as never }),
        'INVALID_REGISTRATION',
        /orderingKey/,
      ],
    ];
    for (const [attempt, code, message] of cases) {
      const err = await thrown(attempt);
      expect(isCqrsError(err, code as CqrsError['code']), String(err)).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
    // Nothing half-registered.
    expect(events.getMetrics().handlers).toEqual({ 'Noted:a': expect.anything() });
  });

  it('an event definition is refused by the command bus', async () => {
    const commands = new CommandBus();
    const Cmd = defineCommand('Cmd', { input: z.object({}) });
    const asCommand = Noted as unknown as typeof Cmd;
    expect(() => commands.registerHandler(asCommand, () => 1)).toThrow(/subscribe to it on an EventBus/);
    await rejectionWith(commands.execute(asCommand, {}), 'HANDLER_NOT_FOUND');
  });
});

describe('logging', () => {
  it('ctx.logger and the logging middleware carry the subscriber', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l));
        callback();
      },
    });
    const logger = pino(stream);
    const events = new EventBus({ logger, middleware: [logging(logger)] });
    events.subscribe(Noted, 'mailer', (_event, ctx) => ctx.logger.info({}, 'sending'));
    const log = noteLog(1, 1);
    await events.publish(Noted, { seq: 0, log, subscribers: 1 }, { metadata: { correlationId: 'c-3' } });
    expect(lines).toEqual([
      expect.objectContaining({
        handler: 'Noted',
        kind: 'event',
        subscriber: 'mailer',
        correlationId: 'c-3',
        msg: 'sending',
      }),
      expect.objectContaining({
        handler: 'Noted',
        kind: 'event',
        subscriber: 'mailer',
        outcome: 'ok',
        msg: expect.stringMatching(/^event Noted:mailer ok in/),
      }),
    ]);
  });
});

describe('close()', () => {
  it('drains publishes in flight, accepts their nested publishes, then refuses with CLOSED', async () => {
    const Followed = defineEvent('Followed', { payload: z.object({ n: z.number() }) });
    const events = new EventBus();
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const followed: number[] = [];
    events.subscribe(Followed, 'tail', (event) => void followed.push(event.n));
    events.subscribe(Noted, 'waits', async (event, ctx) => {
      await gate;
      const report = await ctx.events.publish(Followed, { n: event.seq });
      if (report.delivered.length !== 1) throw new Error('nested publish refused');
    });
    const log = noteLog(1, 1);
    const inFlight = events.publish(Noted, { seq: 7, log, subscribers: 1 });
    const closing = events.close();
    expect(events.closed).toBe(true);
    await rejectionWith(events.publish(Noted, { seq: 0, log, subscribers: 1 }), 'CLOSED');
    expect(() => events.subscribe(Noted, 'late', () => {})).toThrow(/closed/);
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(closed).toBe(false);
    release();
    await expect(inFlight).resolves.toMatchObject({ delivered: ['waits'] });
    await closing;
    expect(followed).toEqual([7]);
    await rejectionWith(events.ready(), 'CLOSED');
  });
});
