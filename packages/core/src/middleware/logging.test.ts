import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { Definition } from '../messages/Definition.js';
import { defineCommand } from '../messages/defineCommand.js';
import { defineQuery } from '../messages/defineQuery.js';
import type { Logger, LoggingOptions, LogLevel } from './logging.js';
import { logging } from './logging.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { newCall } from './newCall.js';

const CreateUser = defineCommand('CreateUser', {
  input: z.object({ username: z.string(), password: z.string() }),
});
const GetUser = defineQuery('GetUser', { input: z.object({ id: z.number() }) });
const secretInput = { username: 'ada', password: 'hunter2-secret' };

function chainOf(definition: Definition): ChainContext {
  return { name: definition.name, kind: definition.kind, definition, shared: {} as ChainContext['shared'] };
}

function callOf(definition: Definition, input: unknown, metadata: Record<string, string> = {}): Call {
  return newCall(definition, input, metadata);
}

interface Entry {
  level: LogLevel;
  obj: Record<string, unknown>;
  msg: string | undefined;
  bindings: Record<string, unknown>;
}

/** A pino-shaped logger recording what it is asked to write, honouring its `levelVal`. */
function recordingLogger(level: LogLevel | 'silent' = 'info', withChild = true) {
  const entries: Entry[] = [];
  const values = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
  const children: Record<string, unknown>[] = [];
  const state = { levelVal: values[level] };
  const make = (bindings: Record<string, unknown>): Logger => {
    const write = (l: LogLevel) => (obj: object, msg?: string) => {
      if (values[l] >= state.levelVal)
        entries.push({ level: l, obj: obj as Record<string, unknown>, msg, bindings });
    };
    const logger: Logger = {
      trace: write('trace'),
      debug: write('debug'),
      info: write('info'),
      warn: write('warn'),
      error: write('error'),
      fatal: write('fatal'),
      get levelVal() {
        return state.levelVal;
      },
    };
    if (withChild) {
      logger.child = (b) => {
        children.push(b);
        return make({ ...bindings, ...b });
      };
    }
    return logger;
  };
  return {
    logger: make({}),
    entries,
    children,
    setLevel: (l: LogLevel | 'silent') => {
      state.levelVal = values[l];
    },
  };
}

function chain(logger: Logger, options: LoggingOptions, next: Next, definition: Definition = CreateUser) {
  return logging(logger, options)(next, chainOf(definition));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('logging: lines', () => {
  it('logs one info line per successful call, with the handler bound once to a child', async () => {
    const { logger, entries, children } = recordingLogger();
    const run = chain(logger, {}, async () => ({ id: 1 }));
    await run(callOf(CreateUser, secretInput, { correlationId: 'c-1' }));
    await run(callOf(CreateUser, secretInput));
    expect(children).toEqual([{ handler: 'CreateUser', kind: 'command' }]);
    expect(entries).toHaveLength(2);
    const [first] = entries as [Entry];
    expect(first.level).toBe('info');
    expect(first.bindings).toEqual({ handler: 'CreateUser', kind: 'command' });
    expect(first.obj).toEqual({ durationMs: expect.any(Number), outcome: 'ok', correlationId: 'c-1' });
    expect(first.msg).toMatch(/^command CreateUser ok in \d+\.\dms$/);
    expect(entries[1]?.obj).not.toHaveProperty('correlationId');
  });

  it('puts handler and kind in the line when the logger has no child()', async () => {
    const { logger, entries } = recordingLogger('info', false);
    await chain(logger, {}, async () => 1, GetUser)(callOf(GetUser, { id: 1 }));
    expect(entries[0]?.obj).toMatchObject({ handler: 'GetUser', kind: 'query', outcome: 'ok' });
  });

  it('never logs the input unless includeInput; the result only with includeResult', async () => {
    const { logger, entries } = recordingLogger();
    await chain(logger, {}, async () => ({ token: 'result-secret' }))(callOf(CreateUser, secretInput));
    await chain(logger, {}, async () => {
      throw new CqrsError('VALIDATION', 'bad input', {
        issues: [{ code: 'custom', path: ['password'], message: 'weak' }],
      });
    })(callOf(CreateUser, secretInput)).catch(() => {});
    expect(JSON.stringify(entries)).not.toContain('hunter2-secret');
    expect(JSON.stringify(entries)).not.toContain('result-secret');

    entries.length = 0;
    await chain(logger, { includeInput: true, includeResult: true }, async () => ({
      token: 'result-secret',
    }))(callOf(CreateUser, secretInput));
    expect(entries[0]?.obj).toMatchObject({ input: secretInput, result: { token: 'result-secret' } });
  });

  it('logs a handler failure at error with its code and error, the cause with its stack', async () => {
    const { logger, entries } = recordingLogger();
    const cause = Object.assign(new Error('db down'), { code: 'ECONNREFUSED' });
    const failure = new CqrsError('HANDLER_FAILED', 'CreateUser failed: db down', {
      cause,
      handler: 'CreateUser',
    });
    await expect(
      chain(logger, {}, () => Promise.reject(failure))(callOf(CreateUser, secretInput)),
    ).rejects.toBe(failure);
    const [entry] = entries as [Entry];
    expect(entry.level).toBe('error');
    expect(entry.obj).toMatchObject({
      outcome: 'error',
      code: 'HANDLER_FAILED',
      err: {
        name: 'CqrsError',
        message: 'CreateUser failed: db down',
        code: 'HANDLER_FAILED',
        cause: {
          name: 'Error',
          message: 'db down',
          code: 'ECONNREFUSED',
          stack: expect.stringContaining('db down'),
        },
      },
    });
    expect(entry.msg).toMatch(/^command CreateUser error HANDLER_FAILED in \d+\.\dms$/);
  });

  it.each(['VALIDATION', 'RATE_LIMITED', 'CIRCUIT_OPEN', 'ABORTED', 'HANDLER_NOT_FOUND'] as const)(
    'logs %s, a client error, at warn without stacks',
    async (code) => {
      const { logger, entries } = recordingLogger();
      const err = new CqrsError(code, 'refused', { retryAfterMs: 5 });
      await expect(
        chain(logger, {}, () => Promise.reject(err))(callOf(CreateUser, secretInput)),
      ).rejects.toBe(err);
      expect(entries[0]?.level).toBe('warn');
      expect(entries[0]?.obj).toMatchObject({ code, err: { code, retryAfterMs: 5 } });
      expect(entries[0]?.obj.err).not.toHaveProperty('stack');
    },
  );

  it.each(['TIMEOUT', 'WORKER_CRASHED', 'OVERLOADED', 'NOT_CLONEABLE'] as const)(
    'logs %s at error',
    async (code) => {
      const { logger, entries } = recordingLogger();
      await chain(logger, {}, () => Promise.reject(new CqrsError(code, 'x')))(callOf(CreateUser, {})).catch(
        () => {},
      );
      expect(entries[0]?.level).toBe('error');
    },
  );

  it('lets levels and the client codes be configured', async () => {
    const { logger, entries } = recordingLogger('trace');
    const options: LoggingOptions = {
      level: 'debug',
      errorLevel: 'fatal',
      clientErrorLevel: 'info',
      clientErrorCodes: ['TIMEOUT'],
    };
    await chain(logger, options, async () => 1)(callOf(CreateUser, {}));
    await chain(logger, options, () => Promise.reject(new CqrsError('TIMEOUT', 't')))(
      callOf(CreateUser, {}),
    ).catch(() => {});
    await chain(logger, options, () => Promise.reject(new CqrsError('VALIDATION', 'v')))(
      callOf(CreateUser, {}),
    ).catch(() => {});
    expect(entries.map((e) => e.level)).toEqual(['debug', 'info', 'fatal']);
  });

  it('logs a failure that is not a CqrsError, and a synchronous throw, at error', async () => {
    const { logger, entries } = recordingLogger();
    await chain(logger, {}, () => Promise.reject(new TypeError('plain')))(callOf(CreateUser, {})).catch(
      () => {},
    );
    const run = chain(logger, {}, () => {
      throw new Error('sync');
    });
    await expect(run(callOf(CreateUser, {}))).rejects.toThrow('sync');
    expect(entries.map((e) => [e.level, (e.obj.err as { message: string }).message])).toEqual([
      ['error', 'plain'],
      ['error', 'sync'],
    ]);
  });

  it('logs a call slower than slowMs at warn with slow: true', async () => {
    // Fake timers and clock: the durations are the ones the test sets, on a loaded machine too.
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    try {
      const { logger, entries } = recordingLogger();
      const run = chain(
        logger,
        { slowMs: 150 },
        (call) =>
          new Promise((resolve) => setTimeout(() => resolve(1), (call.input as { wait: number }).wait)),
      );
      const quick = run(callOf(CreateUser, { wait: 149 }));
      await vi.advanceTimersByTimeAsync(149);
      await quick;
      const slow = run(callOf(CreateUser, { wait: 151 }));
      await vi.advanceTimersByTimeAsync(151);
      await slow;
      expect(entries.map((e) => e.level)).toEqual(['info', 'warn']);
      expect(entries[0]?.obj).not.toHaveProperty('slow');
      expect(entries[0]?.obj.durationMs).toBe(149);
      expect(entries[1]?.obj).toMatchObject({ slow: true, outcome: 'ok', durationMs: 151 });
      expect(entries[1]?.msg).toMatch(/ok in 151\.0ms \(slow\)$/);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('logging: levels', () => {
  it('passes a call straight through when none of its lines is enabled: same promise, no clock read', async () => {
    const { logger, entries } = recordingLogger('silent');
    const now = vi.spyOn(performance, 'now');
    const result = Promise.resolve(1);
    const next = vi.fn<Next>(() => result);
    const run = chain(logger, {}, next);
    const call = callOf(CreateUser, {});
    expect(run(call)).toBe(result);
    expect(next).toHaveBeenCalledWith(call);
    expect(now).not.toHaveBeenCalled();
    expect(entries).toHaveLength(0);
  });

  it('with successes off and failures on (logger at warn), logs failures only', async () => {
    const { logger, entries } = recordingLogger('warn');
    await chain(logger, {}, async () => 1)(callOf(CreateUser, {}));
    await chain(logger, {}, () => Promise.reject(new CqrsError('HANDLER_FAILED', 'x')))(
      callOf(CreateUser, {}),
    ).catch(() => {});
    expect(entries.map((e) => [e.level, e.obj.outcome])).toEqual([['error', 'error']]);
  });

  it('reads the level on every call: a level changed at run time is honoured', async () => {
    const { logger, entries, setLevel } = recordingLogger('silent', false);
    const run = chain(logger, {}, async () => 1);
    await run(callOf(CreateUser, {}));
    setLevel('info');
    await run(callOf(CreateUser, {}));
    setLevel('error');
    await run(callOf(CreateUser, {}));
    expect(entries).toHaveLength(1);
  });

  it('asks isLevelEnabled once per call when the logger has no levelVal', async () => {
    const written: string[] = [];
    let enabled = new Set<string>();
    const isLevelEnabled = vi.fn((level: string) => enabled.has(level));
    const logger: Logger = {
      info: () => written.push('info'),
      warn: () => written.push('warn'),
      error: () => written.push('error'),
      isLevelEnabled,
    };
    const run = chain(logger, {}, async () => 1);
    await run(callOf(CreateUser, {}));
    expect(isLevelEnabled).toHaveBeenCalledTimes(1);
    expect(written).toEqual([]);
    enabled = new Set(['info', 'warn', 'error']);
    await run(callOf(CreateUser, {}));
    expect(written).toEqual(['info']);
  });

  it('reads a level string when that is all the logger has, and logs everything when it has nothing', async () => {
    const written: string[] = [];
    const bare = {
      info: () => written.push('info'),
      warn: () => written.push('warn'),
      error: () => written.push('error'),
    };
    await chain({ ...bare, level: 'warn' }, {}, async () => 1)(callOf(CreateUser, {}));
    expect(written).toEqual([]);
    await chain(bare, {}, async () => 1)(callOf(CreateUser, {}));
    expect(written).toEqual(['info']);
  });
});

describe('logging: options', () => {
  it.each([
    [{ level: 'loud' }],
    [{ errorLevel: 'panic' }],
    [{ slowMs: -1 }],
    [{ slowMs: Number.NaN }],
    [{ clientErrorCodes: 'VALIDATION' }],
    [{ level: 'debug' }],
  ])('refuses %j with INVALID_REGISTRATION', (options) => {
    // The logger has no debug(): a level it cannot write at is refused too.
    const logger = { info() {}, warn() {}, error() {} };
    expect(() => logging(logger, options as LoggingOptions)).toThrow(
      expect.objectContaining({ code: 'INVALID_REGISTRATION' }),
    );
  });

  it('refuses a missing logger', () => {
    expect(() => logging(undefined as unknown as Logger)).toThrow(
      expect.objectContaining({ code: 'INVALID_REGISTRATION' }),
    );
  });
});

describe('logging with real pino', () => {
  function pinoTo(level: string) {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line));
        callback();
      },
    });
    return { logger: pino({ level }, stream), lines };
  }

  it('writes one JSON line per call with the child bindings, once each, and no input', async () => {
    const { logger, lines } = pinoTo('info');
    const run = chain(logger, {}, async () => ({ id: 1 }));
    await run(callOf(CreateUser, secretInput, { correlationId: 'c-42' }));
    await run(callOf(CreateUser, secretInput)).catch(() => {});
    const fail = chain(logger, {}, () =>
      Promise.reject(new CqrsError('HANDLER_FAILED', 'CreateUser failed: no')),
    );
    await fail(callOf(CreateUser, secretInput, { correlationId: 'c-43' })).catch(() => {});
    await vi.waitFor(() => expect(lines).toHaveLength(3));
    expect(lines[0]).toMatchObject({
      level: 30,
      handler: 'CreateUser',
      kind: 'command',
      outcome: 'ok',
      correlationId: 'c-42',
      msg: expect.stringMatching(/^command CreateUser ok in /),
    });
    expect(lines[2]).toMatchObject({
      level: 50,
      outcome: 'error',
      code: 'HANDLER_FAILED',
      correlationId: 'c-43',
      err: { name: 'CqrsError', message: 'CreateUser failed: no', code: 'HANDLER_FAILED' },
    });
    expect(JSON.stringify(lines)).not.toContain('hunter2-secret');
  });

  it('writes nothing and passes through at a silent level', async () => {
    const { logger, lines } = pinoTo('silent');
    const result = Promise.resolve(1);
    const run = chain(logger, {}, () => result);
    expect(run(callOf(CreateUser, {}))).toBe(result);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(0);
  });
});
