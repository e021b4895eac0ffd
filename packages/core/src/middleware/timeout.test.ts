import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import { defineQuery } from '../messages/defineQuery.js';
import { abortReason, callSignal, isAborted } from '../util/callAbort.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { timeout } from './timeout.js';

const Slow = defineQuery('Slow', { input: z.unknown() });

function chainContext(
  recordLateFailure = vi.fn(),
  recordFailureCode = vi.fn(),
  moveFailureCode = vi.fn(),
): ChainContext {
  return {
    name: 'Slow',
    kind: 'query',
    definition: Slow,
    shared: {
      region: { recordLateFailure, recordFailureCode, moveFailureCode },
      handlerSlot: () => 3,
      busSlot: () => 0,
    } as never,
  };
}

function call(fields: Partial<Call> = {}): Call {
  return {
    name: 'Slow',
    kind: 'query',
    input: 1,
    metadata: {},
    signal: undefined,
    definition: Slow,
    originThread: undefined,
    depth: 0,
    cancelGraceMs: undefined,
    cancel: undefined,
    ticket: undefined,
    order: undefined,
    ...fields,
  };
}

/** A `next` that settles only when the test says so, keeping the calls it got. */
function manualNext() {
  const calls: Call[] = [];
  const settle: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  const next: Next = (c) => {
    calls.push(c);
    return new Promise((resolve, reject) => settle.push({ resolve, reject }));
  };
  return { next, calls, settle };
}

/** What `pending` has become so far, without waiting for it. */
async function state(pending: Promise<unknown>): Promise<{ kind: string; value?: unknown }> {
  const marker = Symbol('pending');
  const outcome = await Promise.race([
    pending.then(
      (value) => ({ kind: 'resolved', value }),
      (value: unknown) => ({ kind: 'rejected', value }),
    ),
    Promise.resolve().then(() => Promise.resolve(marker)),
  ]);
  return outcome === marker ? { kind: 'pending' } : (outcome as { kind: string; value?: unknown });
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/**
 * No timer outlives its call: the queue's timer, unref'd once no deadline is pending, fires once idle within
 * the timeout's span and is gone; nothing re-arms it.
 */
async function expectTimersDrain(): Promise<void> {
  await vi.advanceTimersByTimeAsync(1000);
  expect(vi.getTimerCount()).toBe(0);
}

describe('timeout', () => {
  it('rejects with TIMEOUT at ms, not before, naming the handler', async () => {
    const { next } = manualNext();
    const pending = timeout(100)(next, chainContext())(call());
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(99);
    expect((await state(pending)).kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    const outcome = await state(pending);
    expect(outcome.kind).toBe('rejected');
    expect(isCqrsError(outcome.value, 'TIMEOUT')).toBe(true);
    expect(outcome.value).toMatchObject({ handler: 'Slow', message: 'Slow: timed out after 100 ms' });
  });

  it('cancels the call it passed on with the TIMEOUT error as reason, and passes graceMs on', async () => {
    const { next, calls } = manualNext();
    const pending = timeout(50, { graceMs: 20 })(next, chainContext())(call());
    pending.catch(() => {});
    const passed = calls[0] as Call;
    expect(passed.cancelGraceMs).toBe(20);
    // No AbortSignal is made per call: the caller's signal (none here) passes on, the timeout rides on a token.
    expect(passed.signal).toBeUndefined();
    expect(isAborted(passed)).toBe(false);
    const signal = callSignal(passed);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    expect(isAborted(passed)).toBe(true);
    expect(signal?.aborted).toBe(true);
    const outcome = await state(pending);
    // The very error the caller got: a terminal watching the call settles with the same one.
    expect(abortReason(passed)).toBe(outcome.value);
    expect(signal?.reason).toBe(outcome.value);
    // A signal asked for after the timeout is born aborted.
    expect(callSignal(passed)?.aborted).toBe(true);
  });

  it('passes on a call with the same keys, keeping the cancelGraceMs it had without graceMs', () => {
    const { next, calls } = manualNext();
    const original = call({ cancelGraceMs: 333 });
    timeout(50)(next, chainContext())(original).catch(() => {});
    expect(Object.keys(calls[0] as Call)).toEqual(Object.keys(original));
    expect(calls[0]?.cancelGraceMs).toBe(333);
    expect(calls[0]?.input).toBe(original.input);
  });

  it('settles with the result when the call finishes first, and leaves no timer behind', async () => {
    const { next, settle } = manualNext();
    const pending = timeout(100)(next, chainContext())(call());
    expect(vi.getTimerCount()).toBe(1);
    settle[0]?.resolve('done');
    await expect(pending).resolves.toBe('done');
    await expectTimersDrain();
  });

  it("settles with the call's own error when it fails first, and leaves no timer behind", async () => {
    const { next, settle } = manualNext();
    const pending = timeout(100)(next, chainContext())(call());
    const failure = new CqrsError('HANDLER_FAILED', 'Slow failed: boom');
    settle[0]?.reject(failure);
    await expect(pending).rejects.toBe(failure);
    await expectTimersDrain();
  });

  it("yields ABORTED, not TIMEOUT, when the caller's signal aborts first; the timer and listener go", async () => {
    const { next, calls } = manualNext();
    const caller = new AbortController();
    const removed = vi.spyOn(caller.signal, 'removeEventListener');
    const pending = timeout(100)(next, chainContext())(call({ signal: caller.signal }));
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(40);
    const reason = new Error('user left');
    caller.abort(reason);
    const outcome = await state(pending);
    expect(outcome.kind).toBe('rejected');
    expect(isCqrsError(outcome.value, 'ABORTED')).toBe(true);
    expect((outcome.value as Error).cause).toBe(reason);
    // Inside, the call sees the caller's own reason.
    expect(calls[0]?.signal?.reason).toBe(reason);
    await expectTimersDrain();
    expect(removed).toHaveBeenCalled();
  });

  it('removes its listener from the caller signal when the call settles', async () => {
    const { next, settle } = manualNext();
    const caller = new AbortController();
    const added = vi.spyOn(caller.signal, 'addEventListener');
    const removed = vi.spyOn(caller.signal, 'removeEventListener');
    const pending = timeout(100)(next, chainContext())(call({ signal: caller.signal }));
    settle[0]?.resolve(1);
    await pending;
    expect(added).toHaveBeenCalledTimes(1);
    expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0]?.[1]);
  });

  it('passes an already aborted call through untouched', async () => {
    const seen: Call[] = [];
    const next: Next = async (c) => {
      seen.push(c);
      throw new CqrsError('ABORTED', 'aborted');
    };
    const original = call({ signal: AbortSignal.abort() });
    await expect(timeout(100)(next, chainContext())(original)).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen[0]).toBe(original);
    await expectTimersDrain();
  });

  it('releases the caller at ms even when nothing inside watches the signal', async () => {
    const never: Next = () => new Promise(() => {});
    const pending = timeout(30)(never, chainContext())(call());
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(30);
    expect(await state(pending)).toMatchObject({ kind: 'rejected', value: { code: 'TIMEOUT' } });
  });

  it('turns a synchronous throw inside into a rejection and clears the timer', async () => {
    const throwing: Next = () => {
      throw new Error('sync');
    };
    await expect(timeout(30)(throwing, chainContext())(call())).rejects.toThrow('sync');
    await expectTimersDrain();
  });

  it('recounts as a failure a success counted inside that lands after the caller got TIMEOUT', async () => {
    const recordLateFailure = vi.fn();
    const recordFailureCode = vi.fn();
    const { next, settle } = manualNext();
    const mw = timeout(10)(next, chainContext(recordLateFailure, recordFailureCode));
    // Claimed by the handler's terminal when it started.
    const pending = mw(call({ ticket: { claimed: true, settledBy: undefined } }));
    pending.catch(() => {});
    await vi.advanceTimersByTimeAsync(10);
    settle[0]?.resolve('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(recordLateFailure).toHaveBeenCalledWith(3);
    // …under the code the caller got.
    expect(recordFailureCode).toHaveBeenCalledWith(3, expect.objectContaining({ code: 'TIMEOUT' }));
    // Never reached a terminal (ticket unclaimed): the recording layer counts the caller's failure itself.
    const other = mw(call({ ticket: { claimed: false, settledBy: undefined } }));
    other.catch(() => {});
    await vi.advanceTimersByTimeAsync(10);
    settle[1]?.resolve('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(recordLateFailure).toHaveBeenCalledTimes(1);
  });

  it('nests: the shorter deadline fires, the inner graceMs wins', async () => {
    const { next, calls } = manualNext();
    const ctx = chainContext();
    const inner = timeout(20, { graceMs: 5 })(next, ctx);
    const outer = timeout(100, { graceMs: 50 })(inner, ctx);
    const pending = outer(call());
    pending.catch(() => {});
    expect(calls[0]?.cancelGraceMs).toBe(5);
    await vi.advanceTimersByTimeAsync(20);
    expect(await state(pending)).toMatchObject({ value: { message: 'Slow: timed out after 20 ms' } });
    await expectTimersDrain();
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '10'])('refuses ms = %s at once', (ms) => {
    expect(() => timeout(ms as number)).toThrow(
      expect.objectContaining({
        code: 'INVALID_REGISTRATION',
        message: expect.stringMatching(/^timeout: ms must be /),
      }),
    );
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, '5'])('refuses graceMs = %s at once', (graceMs) => {
    expect(() => timeout(10, { graceMs: graceMs as number })).toThrow(
      expect.objectContaining({
        code: 'INVALID_REGISTRATION',
        message: expect.stringMatching(/^timeout: options\.graceMs must be /),
      }),
    );
  });

  it('accepts graceMs = 0 (terminate at once) and fractional ms', () => {
    expect(() => timeout(0.5, { graceMs: 0 })).not.toThrow();
  });
});
