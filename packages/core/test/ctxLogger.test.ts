/**
 * `ctx.logger`: inline through the bus's `logger` option (real pino), in threads through the pool's
 * `threadLogger` module, and a no-op when neither is set or the module cannot be loaded. Runs against the
 * built package and fixtures (`node build.mjs --fast` first).
 */
import { Writable } from 'node:stream';
import { BroadcastChannel } from 'node:worker_threads';
import { CommandBus, defineCommand, inWorker, isCqrsError, QueryBus, WorkerPool } from '@cqrs-pool/core';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LINES, LogHello } from './fixtures/threadLogger.js';
import { fixtureUrl } from './fixtureUrl.js';

const Greet = defineCommand('Greet', { input: z.object({ who: z.string() }), output: z.string() });
const threadLogger = fixtureUrl('threadLogger');

let pool: WorkerPool | undefined;
let channel: BroadcastChannel | undefined;

afterEach(async () => {
  channel?.close();
  channel = undefined;
  await pool?.close();
  pool = undefined;
});

function pinoLines() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l));
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** The lines the fixture logger sends from pool threads. */
function threadLines(): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  channel = new BroadcastChannel(LINES);
  channel.onmessage = (event) => lines.push((event as MessageEvent).data as Record<string, unknown>);
  return lines;
}

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('ctx.logger inline', () => {
  it('is a child of the bus logger with handler, kind and correlationId bound', async () => {
    const { logger, lines } = pinoLines();
    const bus = new CommandBus({ logger, metrics: false });
    bus.registerHandler(Greet, (input, ctx) => {
      ctx.logger.info({ who: input.who }, 'greeting');
      return `hello ${input.who}`;
    });
    await bus.execute(Greet, { who: 'ann' }, { metadata: { correlationId: 'req-7' } });
    await bus.execute(Greet, { who: 'bob' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      handler: 'Greet',
      kind: 'command',
      correlationId: 'req-7',
      who: 'ann',
      msg: 'greeting',
    });
    expect(lines[1]).toMatchObject({ handler: 'Greet', who: 'bob' });
    expect(lines[1]).not.toHaveProperty('correlationId');
  });

  it('merges the bindings into each line when the logger has no child', async () => {
    const seen: [object, string | undefined][] = [];
    const record = (obj: object, msg?: string): void => void seen.push([obj, msg]);
    const bus = new CommandBus({ logger: { info: record, warn: record, error: record } });
    bus.registerHandler(Greet, (_input, ctx) => {
      ctx.logger.warn({ x: 1 }, 'careful');
      return 'ok';
    });
    await bus.execute(Greet, { who: 'ann' }, { metadata: { correlationId: 'c-1' } });
    expect(seen).toEqual([[{ handler: 'Greet', kind: 'command', correlationId: 'c-1', x: 1 }, 'careful']]);
  });

  it('is a no-op without a logger, and a bad logger option is refused', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Greet, (_input, ctx) => {
      ctx.logger.info({}, 'nobody hears this');
      ctx.logger.child?.({ a: 1 }).error({}, 'nor this');
      return 'ok';
    });
    await expect(bus.execute(Greet, { who: 'ann' })).resolves.toBe('ok');
    try {
      new CommandBus({ logger: { info: () => {} } as never });
      expect.unreachable();
    } catch (err) {
      expect(isCqrsError(err) && err.code).toBe('INVALID_REGISTRATION');
    }
  });
});

describe('ctx.logger in pool threads', () => {
  it("logs through the threadLogger module's export with the call's correlationId", async () => {
    const lines = threadLines();
    pool = new WorkerPool({ threads: 2, threadLogger: { module: threadLogger } });
    const bus = new QueryBus({ pool });
    bus.registerHandler(LogHello, inWorker(threadLogger, 'logHello'));
    await expect(bus.execute(LogHello, { n: 1 }, { metadata: { correlationId: 'req-42' } })).resolves.toBe(
      'logged',
    );
    await until(() => lines.length >= 1);
    expect(lines[0]).toEqual({
      level: 'info',
      handler: 'LogHello',
      kind: 'query',
      correlationId: 'req-42',
      n: 1,
      msg: 'hello',
    });
  });

  it('is a no-op without threadLogger', async () => {
    const lines = threadLines();
    pool = new WorkerPool({ threads: 1 });
    const bus = new QueryBus({ pool });
    bus.registerHandler(LogHello, inWorker(threadLogger, 'logHello'));
    await expect(bus.execute(LogHello, { n: 2 })).resolves.toBe('logged');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines).toEqual([]);
  });

  it('runs calls with a no-op logger when the module cannot be loaded, and tells onThreadError once', async () => {
    const errors: unknown[] = [];
    pool = new WorkerPool({
      threads: 2,
      threadLogger: { module: fixtureUrl('noSuchThreadLogger') },
      onThreadError: (err) => errors.push(err),
    });
    const bus = new QueryBus({ pool });
    bus.registerHandler(LogHello, inWorker(threadLogger, 'logHello'));
    const calls = [1, 2, 3, 4].map((n) => bus.execute(LogHello, { n }));
    await expect(Promise.all(calls)).resolves.toEqual(['logged', 'logged', 'logged', 'logged']);
    await until(() => errors.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errors).toHaveLength(1);
    expect(isCqrsError(errors[0]) && errors[0].code).toBe('INVALID_REGISTRATION');
  });

  it('refuses a malformed threadLogger option', () => {
    for (const threadLoggerOption of [{ module: 'relative/path.js' }, { module: threadLogger, export: '' }]) {
      try {
        new WorkerPool({ threads: 1, threadLogger: threadLoggerOption });
        expect.unreachable();
      } catch (err) {
        expect(isCqrsError(err) && err.code).toBe('INVALID_REGISTRATION');
      }
    }
  });
});
