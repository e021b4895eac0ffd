import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import { defineQuery } from '../messages/defineQuery.js';
import { consoleLogger } from './consoleLogger.js';
import { logging } from './logging.js';
import type { Call, ChainContext } from './Middleware.js';

/** A console stand-in recording which method got which line. */
function fakeConsole() {
  const lines: { method: 'log' | 'warn' | 'error'; line: string }[] = [];
  return {
    lines,
    console: {
      log: (line: string) => lines.push({ method: 'log', line }),
      warn: (line: string) => lines.push({ method: 'warn', line }),
      error: (line: string) => lines.push({ method: 'error', line }),
    },
  };
}

describe('consoleLogger', () => {
  it('writes one JSON line per event: level, time, bindings, fields, msg', () => {
    const out = fakeConsole();
    const logger = consoleLogger({ console: out.console, bindings: { app: 'demo' } });
    logger.info({ a: 1 }, 'hello');
    expect(out.lines).toHaveLength(1);
    const record = JSON.parse(out.lines[0]?.line ?? '');
    expect(Object.keys(record)).toEqual(['level', 'time', 'app', 'a', 'msg']);
    expect(record).toMatchObject({ level: 'info', app: 'demo', a: 1, msg: 'hello' });
    expect(new Date(record.time).toString()).not.toBe('Invalid Date');
  });

  it('sends info and below to console.log, warn to console.warn, error and fatal to console.error', () => {
    const out = fakeConsole();
    const logger = consoleLogger({ console: out.console, level: 'trace' });
    logger.trace({}, 't');
    logger.debug({}, 'd');
    logger.info({}, 'i');
    logger.warn({}, 'w');
    logger.error({}, 'e');
    logger.fatal({}, 'f');
    expect(out.lines.map((l) => l.method)).toEqual(['log', 'log', 'log', 'warn', 'error', 'error']);
  });

  it('drops lines below its level, which can change at run time', () => {
    const out = fakeConsole();
    const logger = consoleLogger({ console: out.console, level: 'warn' });
    expect(logger.levelVal).toBe(40);
    expect(logger.isLevelEnabled('info')).toBe(false);
    expect(logger.isLevelEnabled('error')).toBe(true);
    logger.info({}, 'dropped');
    logger.level = 'info';
    logger.info({}, 'kept');
    logger.level = 'silent';
    logger.fatal({}, 'dropped');
    expect(out.lines.map((l) => JSON.parse(l.line).msg)).toEqual(['kept']);
    expect(() => {
      logger.level = 'loud' as 'info';
    }).toThrow(CqrsError);
  });

  it('writes readable lines in pretty format', () => {
    const out = fakeConsole();
    const logger = consoleLogger({ console: out.console, format: 'pretty' }).child({ handler: 'GetUser' });
    logger.warn({ durationMs: 1.5, nested: { x: 1 } }, 'query GetUser ok in 1.5ms');
    expect(out.lines[0]?.line).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN {2}query GetUser ok in 1\.5ms {2}handler=GetUser durationMs=1\.5 nested=\{"x":1\}$/,
    );
  });

  it('merges child bindings, keeping the parent unchanged', () => {
    const out = fakeConsole();
    const parent = consoleLogger({ console: out.console, bindings: { app: 'a' } });
    const child = parent.child({ handler: 'H' }).child({ kind: 'query' });
    child.info({}, 'c');
    parent.info({}, 'p');
    expect(out.lines.map((l) => JSON.parse(l.line))).toMatchObject([
      { app: 'a', handler: 'H', kind: 'query' },
      { app: 'a' },
    ]);
    expect(JSON.parse(out.lines[1]?.line ?? '')).not.toHaveProperty('handler');
  });

  it('never throws on what JSON cannot write: BigInt, cycles, Errors', () => {
    const out = fakeConsole();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const shared = { s: 1 };
    consoleLogger({ console: out.console }).error(
      { n: 10n, cyclic, twice: [shared, shared], err: new CqrsError('TIMEOUT', 'late') },
      'odd',
    );
    const record = JSON.parse(out.lines[0]?.line ?? '');
    expect(record).toMatchObject({
      n: '10',
      cyclic: { a: 1, self: '[Circular]' },
      twice: [{ s: 1 }, { s: 1 }],
      err: { name: 'CqrsError', message: 'late', code: 'TIMEOUT' },
    });
  });

  it('refuses an unknown level or format', () => {
    expect(() => consoleLogger({ level: 'loud' as 'info' })).toThrow(CqrsError);
    expect(() => consoleLogger({ format: 'xml' as 'json' })).toThrow(CqrsError);
  });

  it('serves logging(): one line per call, handler bound once, no input', async () => {
    const out = fakeConsole();
    const GetUser = defineQuery('GetUser', { input: z.object({ id: z.number(), token: z.string() }) });
    const chain: ChainContext = {
      name: 'GetUser',
      kind: 'query',
      definition: GetUser,
      shared: {} as ChainContext['shared'],
    };
    const run = logging(consoleLogger({ console: out.console }))(async () => ({ ok: true }), chain);
    const call: Call = {
      name: 'GetUser',
      kind: 'query',
      input: { id: 1, token: 'secret-token' },
      metadata: { correlationId: 'c-9' },
      signal: undefined,
      definition: GetUser,
      originThread: undefined,
      depth: 0,
      cancelGraceMs: undefined,
      cancel: undefined,
      ticket: undefined,
      order: undefined,
    };
    await run(call);
    expect(out.lines).toHaveLength(1);
    const record = JSON.parse(out.lines[0]?.line ?? '');
    expect(record).toMatchObject({
      level: 'info',
      handler: 'GetUser',
      kind: 'query',
      outcome: 'ok',
      correlationId: 'c-9',
      msg: expect.stringMatching(/^query GetUser ok in \d+\.\dms$/),
    });
    expect(out.lines[0]?.line).not.toContain('secret-token');
  });
});
