import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import type { Definition } from '../messages/Definition.js';
import { defineCommand } from '../messages/defineCommand.js';
import { defineQuery } from '../messages/defineQuery.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { retry } from './retry.js';

const Get = defineQuery('Get', { input: z.unknown() });
const Put = defineCommand('Put', { input: z.unknown() });

function chainFor(definition: Definition): ChainContext {
  return { name: definition.name, kind: definition.kind, definition, shared: {} as ChainContext['shared'] };
}

function call(fields: Partial<Call> = {}): Call {
  return {
    name: 'Get',
    kind: 'query',
    input: 1,
    metadata: {},
    signal: undefined,
    definition: Get,
    originThread: undefined,
    depth: 0,
    cancelGraceMs: undefined,
    cancel: undefined,
    ticket: undefined,
    order: undefined,
    ...fields,
  };
}

const failed = (code: ErrorCode = 'HANDLER_FAILED'): CqrsError => new CqrsError(code, `Get: ${code}`);

/**
 * A `next` that fails with `errors[i]` on attempt i + 1 and then succeeds with the attempt number; it keeps
 * the fake time of each attempt and the call it got.
 */
function scripted(errors: readonly unknown[]) {
  const times: number[] = [];
  const calls: Call[] = [];
  const next: Next = async (c) => {
    times.push(Date.now());
    calls.push(c);
    const err = errors[calls.length - 1];
    if (err !== undefined) throw err;
    return calls.length;
  };
  return { next, times, calls };
}

/** Settles `pending` by running fake timers, and returns what it settled with. */
async function outcome(pending: Promise<unknown>): Promise<{ ok: boolean; value: unknown }> {
  const settled = pending.then(
    (value) => ({ ok: true, value }),
    (value: unknown) => ({ ok: false, value }),
  );
  await vi.runAllTimersAsync();
  return settled;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('retry', () => {
  it('makes one attempt and no timer when the first succeeds', async () => {
    const { next, calls } = scripted([]);
    await expect(retry()(next, chainFor(Get))(call())).resolves.toBe(1);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('retries a transient failure until an attempt succeeds, sending the same call each time', async () => {
    const { next, calls } = scripted([failed(), failed('WORKER_CRASHED')]);
    const original = call({ ticket: { claimed: false, settledBy: undefined } });
    expect(await outcome(retry()(next, chainFor(Get))(original))).toEqual({ ok: true, value: 3 });
    expect(calls).toEqual([original, original, original]);
  });

  it('gives up after maxRetries retries with the last attempt’s error, unchanged', async () => {
    const errors = [failed(), failed(), failed('TIMEOUT')];
    const { next, calls } = scripted([...errors, failed()]);
    const result = await outcome(retry({ maxRetries: 2 })(next, chainFor(Get))(call()));
    expect(result).toEqual({ ok: false, value: errors[2] });
    expect(calls).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('makes a single attempt with maxRetries: 0', async () => {
    const { next, calls } = scripted([failed()]);
    expect((await outcome(retry({ maxRetries: 0 })(next, chainFor(Get))(call()))).ok).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it.each<ErrorCode>(['HANDLER_FAILED', 'TIMEOUT', 'WORKER_CRASHED', 'OVERLOADED'])(
    'retries %s by default',
    async (code) => {
      const { next, calls } = scripted([failed(code)]);
      expect(await outcome(retry()(next, chainFor(Get))(call()))).toEqual({ ok: true, value: 2 });
      expect(calls).toHaveLength(2);
    },
  );

  it.each<ErrorCode>([
    'VALIDATION',
    'CIRCUIT_OPEN',
    'RATE_LIMITED',
    'ABORTED',
    'NOT_CLONEABLE',
    'HANDLER_NOT_FOUND',
    'INVALID_REGISTRATION',
    'DUPLICATE_HANDLER',
    'CLOSED',
  ])('never retries %s, even when isRetryable says yes', async (code) => {
    const err = failed(code);
    const { next, calls } = scripted([err]);
    const isRetryable = vi.fn(() => true);
    expect(await outcome(retry({ isRetryable })(next, chainFor(Get))(call()))).toEqual({
      ok: false,
      value: err,
    });
    expect(calls).toHaveLength(1);
    expect(isRetryable).not.toHaveBeenCalled();
  });

  it('does not retry an error that is not a CqrsError', async () => {
    const err = new Error('from a custom middleware');
    const { next, calls } = scripted([err]);
    expect(await outcome(retry()(next, chainFor(Get))(call()))).toEqual({ ok: false, value: err });
    expect(calls).toHaveLength(1);
  });

  it('lets isRetryable narrow, with the error and the number of the attempt that failed', async () => {
    const errors = [failed(), failed(), failed()];
    const { next, calls } = scripted(errors);
    const isRetryable = vi.fn((_err: CqrsError, attempt: number) => attempt < 2);
    const result = await outcome(retry({ isRetryable })(next, chainFor(Get))(call()));
    expect(result).toEqual({ ok: false, value: errors[1] });
    expect(calls).toHaveLength(2);
    expect(isRetryable.mock.calls).toEqual([
      [errors[0], 1],
      [errors[1], 2],
    ]);
  });

  it('waits baseDelayMs × 2^n, capped at maxDelayMs, without jitter', async () => {
    const { next, times } = scripted([failed(), failed(), failed(), failed()]);
    const mw = retry({ maxRetries: 4, baseDelayMs: 100, maxDelayMs: 300, jitter: false });
    await outcome(mw(next, chainFor(Get))(call()));
    expect(times).toEqual([0, 100, 300, 600, 900]);
  });

  it('waits random(base, 3 × previous wait), capped, with decorrelated jitter', async () => {
    const draws = [0.5, 0.8, 0, 0.5];
    const random = vi.fn(() => draws.shift() ?? 0);
    const { next, times } = scripted([failed(), failed(), failed(), failed()]);
    const mw = retry({ maxRetries: 4, baseDelayMs: 50, maxDelayMs: 200, random });
    await outcome(mw(next, chainFor(Get))(call()));
    // 50 + 0.5 × (150 − 50) = 100; min(200, 50 + 0.8 × (300 − 50) = 250) = 200; 50 + 0 × (600 − 50) = 50;
    // 50 + 0.5 × (150 − 50) = 100.
    const waits = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(waits).toEqual([100, 200, 50, 100]);
    expect(random).toHaveBeenCalledTimes(4);
  });

  it('caps jittered waits at maxDelayMs', async () => {
    const { next, times } = scripted([failed(), failed(), failed()]);
    const mw = retry({ maxRetries: 3, baseDelayMs: 100, maxDelayMs: 200, random: () => 0.999999 });
    await outcome(mw(next, chainFor(Get))(call()));
    const waits = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(Math.max(...waits)).toBeLessThanOrEqual(200);
    expect(waits[2]).toBeCloseTo(200, 0);
  });

  it('stops at once with ABORTED when the signal aborts during a wait, clearing the timer', async () => {
    const { next, calls } = scripted([failed(), failed()]);
    const caller = new AbortController();
    const pending = retry({ baseDelayMs: 1000, maxDelayMs: 1000 })(next, chainFor(Get))(
      call({ signal: caller.signal }),
    );
    const settled = pending.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    caller.abort();
    const err = await settled;
    expect(isCqrsError(err, 'ABORTED')).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(Date.now()).toBe(10);
    expect(calls).toHaveLength(1);
  });

  it('settles with the signal’s TIMEOUT reason when a timeout outside fires during a wait', async () => {
    const { next } = scripted([failed(), failed()]);
    const outer = new AbortController();
    const pending = retry({ baseDelayMs: 1000, maxDelayMs: 1000 })(next, chainFor(Get))(
      call({ signal: outer.signal }),
    );
    const settled = pending.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await vi.advanceTimersByTimeAsync(10);
    const reason = new CqrsError('TIMEOUT', 'Get: timed out after 10 ms');
    outer.abort(reason);
    expect(await settled).toBe(reason);
  });

  it('makes no further attempt after the signal aborted during an attempt', async () => {
    const caller = new AbortController();
    const calls: Call[] = [];
    const next: Next = async (c) => {
      calls.push(c);
      caller.abort();
      throw failed('TIMEOUT');
    };
    const result = await outcome(retry()(next, chainFor(Get))(call({ signal: caller.signal })));
    expect(result.ok).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it('turns a synchronous throw of the first attempt into a rejection', async () => {
    const next: Next = () => {
      throw new Error('sync');
    };
    await expect(retry()(next, chainFor(Get))(call())).rejects.toThrow('sync');
  });

  it('passes commands through untouched by default: a command is not idempotent', async () => {
    const { next, calls } = scripted([failed()]);
    const composed = retry()(next, chainFor(Put));
    expect(composed).toBe(next);
    expect((await outcome(composed(call({ name: 'Put', kind: 'command', definition: Put })))).ok).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it('retries commands with onCommands: true', async () => {
    const { next, calls } = scripted([failed()]);
    const composed = retry({ onCommands: true })(next, chainFor(Put));
    const result = await outcome(composed(call({ name: 'Put', kind: 'command', definition: Put })));
    expect(result).toEqual({ ok: true, value: 2 });
    expect(calls).toHaveLength(2);
  });

  it.each<[string, Parameters<typeof retry>[0], RegExp]>([
    ['maxRetries', { maxRetries: -1 }, /options\.maxRetries must be an integer >= 0/],
    ['maxRetries', { maxRetries: 1.5 }, /options\.maxRetries/],
    ['baseDelayMs', { baseDelayMs: -5 }, /options\.baseDelayMs/],
    ['baseDelayMs', { baseDelayMs: Number.NaN }, /options\.baseDelayMs/],
    [
      'maxDelayMs',
      { baseDelayMs: 100, maxDelayMs: 50 },
      /options\.maxDelayMs must be a number >= baseDelayMs/,
    ],
    ['maxDelayMs', { maxDelayMs: Number.POSITIVE_INFINITY }, /options\.maxDelayMs/],
    ['jitter', { jitter: 'yes' as never }, /options\.jitter/],
    ['isRetryable', { isRetryable: true as never }, /options\.isRetryable/],
    ['onCommands', { onCommands: 1 as never }, /options\.onCommands/],
    ['random', { random: 4 as never }, /options\.random/],
  ])('refuses a bad %s at once with INVALID_REGISTRATION', (_name, options, message) => {
    expect(() => retry(options)).toThrow(
      expect.objectContaining({ code: 'INVALID_REGISTRATION', message: expect.stringMatching(message) }),
    );
  });
});
