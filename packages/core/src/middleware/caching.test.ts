import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { Definition } from '../messages/Definition.js';
import { defineQuery } from '../messages/defineQuery.js';
import type { CachingOptions } from './caching.js';
import { caching } from './caching.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { queryOnlyLabel } from './queryOnly.js';

const GetUser = defineQuery('GetUser', { input: z.object({ id: z.number() }), output: z.unknown() });
const GetOrder = defineQuery('GetOrder', { input: z.object({ id: z.number() }), output: z.unknown() });

function chainOf(definition: Definition): ChainContext {
  return {
    name: definition.name,
    kind: definition.kind,
    definition,
    shared: {} as ChainContext['shared'],
  };
}

function callOf(
  definition: Definition,
  input: unknown,
  options: { signal?: AbortSignal; metadata?: Metadata } = {},
): Call {
  return {
    name: definition.name,
    kind: definition.kind,
    input,
    metadata: options.metadata ?? {},
    signal: options.signal,
    definition,
    originThread: undefined,
    depth: 0,
    cancelGraceMs: undefined,
    cancel: undefined,
    ticket: undefined,
    order: undefined,
  };
}

/** A handler stand-in: counts the calls that reach it; each answers with a fresh object (or what `answer` says). */
function fakeNext(
  answer: (call: Call, n: number) => Promise<unknown> = async (call, n) => ({ input: call.input, n }),
) {
  const calls: Call[] = [];
  const next: Next = (call) => {
    calls.push(call);
    return answer(call, calls.length);
  };
  return { next, calls };
}

/** A promise the test settles. */
function deferred<T = unknown>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(options: CachingOptions = { ttlMs: 1000 }, answer?: Parameters<typeof fakeNext>[0]) {
  const cache = caching(options);
  const handler = fakeNext(answer);
  const getUser = cache(handler.next, chainOf(GetUser));
  return { cache, handler, getUser };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('caching: hits', () => {
  it('serves the second identical call from the cache without reaching the handler', async () => {
    const { handler, getUser } = setup();
    const first = await getUser(callOf(GetUser, { id: 1 }));
    const second = await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(1);
    expect(second).toBe(first);
  });

  it('keys by content: inputs with keys in another order share an entry; other inputs do not', async () => {
    const { handler, getUser } = setup();
    await getUser(callOf(GetUser, { id: 1, filter: { a: 1, b: 2 } }));
    await getUser(callOf(GetUser, { filter: { b: 2, a: 1 }, id: 1 }));
    expect(handler.calls).toHaveLength(1);
    await getUser(callOf(GetUser, { id: 2, filter: { a: 1, b: 2 } }));
    expect(handler.calls).toHaveLength(2);
  });

  it('keeps the entries of two handlers apart in one instance', async () => {
    const cache = caching({ ttlMs: 1000 });
    const users = fakeNext(async () => 'user');
    const orders = fakeNext(async () => 'order');
    const getUser = cache(users.next, chainOf(GetUser));
    const getOrder = cache(orders.next, chainOf(GetOrder));
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('user');
    expect(await getOrder(callOf(GetOrder, { id: 1 }))).toBe('order');
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('user');
    expect(users.calls).toHaveLength(1);
    expect(orders.calls).toHaveLength(1);
  });

  it('caches undefined and null results', async () => {
    const { handler, getUser } = setup({ ttlMs: 1000 }, async (call) =>
      (call.input as { id: number }).id === 1 ? undefined : null,
    );
    for (let i = 0; i < 3; i++) {
      expect(await getUser(callOf(GetUser, { id: 1 }))).toBeUndefined();
      expect(await getUser(callOf(GetUser, { id: 2 }))).toBeNull();
    }
    expect(handler.calls).toHaveLength(2);
  });

  it('passes on a copy of the call that adds no key, its input a snapshot taken with the key', async () => {
    const { handler, getUser } = setup();
    const input = { id: 1 };
    const call = callOf(GetUser, input);
    const pending = getUser(call);
    input.id = 2;
    await pending;
    const passed = handler.calls[0] as Call;
    expect(Object.keys(passed)).toEqual(Object.keys(call));
    expect({ ...passed, input: undefined }).toEqual({ ...call, input: undefined });
    expect(passed.input).toEqual({ id: 1 });
  });

  it('passes the very same call on for an input that is no object (nothing to snapshot)', async () => {
    const { handler, getUser } = setup();
    const call = callOf(GetUser, 7);
    await getUser(call);
    expect(handler.calls[0]).toBe(call);
  });

  it('is marked query-only, so a CommandBus refuses it', () => {
    expect(queryOnlyLabel(caching({ ttlMs: 1 }))).toBe('caching()');
  });
});

describe('caching: expiry and eviction', () => {
  it('expires an entry ttlMs after it was stored, not after its last hit', async () => {
    vi.useFakeTimers();
    const { handler, getUser } = setup({ ttlMs: 1000, clock: { now: () => Date.now() } });
    await getUser(callOf(GetUser, { id: 1 }));
    vi.advanceTimersByTime(600);
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(1);
    vi.advanceTimersByTime(401);
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(2);
  });

  it('keeps entries without expiry when ttlMs is Infinity', async () => {
    vi.useFakeTimers();
    const { handler, getUser } = setup({ ttlMs: Number.POSITIVE_INFINITY, clock: { now: () => Date.now() } });
    await getUser(callOf(GetUser, { id: 1 }));
    vi.advanceTimersByTime(365 * 24 * 3600_000);
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(1);
  });

  it('evicts the least recently used entry beyond max', async () => {
    const { handler, getUser } = setup({ ttlMs: 1000, max: 2 });
    await getUser(callOf(GetUser, { id: 1 }));
    await getUser(callOf(GetUser, { id: 2 }));
    await getUser(callOf(GetUser, { id: 1 })); // 1 is now the most recently used
    await getUser(callOf(GetUser, { id: 3 })); // evicts 2
    expect(handler.calls).toHaveLength(3);
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(3);
    await getUser(callOf(GetUser, { id: 2 }));
    expect(handler.calls).toHaveLength(4);
  });
});

describe('caching: coalescing', () => {
  it('runs 50 identical concurrent calls once; every caller gets the same result', async () => {
    const gate = deferred();
    const { handler, getUser } = setup({ ttlMs: 1000 }, async () => {
      await gate.promise;
      return { user: 1 };
    });
    const pending = Array.from({ length: 50 }, () => getUser(callOf(GetUser, { id: 1 })));
    gate.resolve(undefined);
    const results = await Promise.all(pending);
    expect(handler.calls).toHaveLength(1);
    for (const result of results) expect(result).toBe(results[0]);
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(1);
  });

  it('never caches an error: a failed execution rejects all its waiters, and the next call runs again', async () => {
    const gate = deferred();
    const { handler, getUser } = setup({ ttlMs: 1000 }, async (_call, n) => {
      if (n === 1) {
        await gate.promise;
        throw new CqrsError('HANDLER_FAILED', 'boom');
      }
      return 'recovered';
    });
    const pending = Array.from({ length: 5 }, () => getUser(callOf(GetUser, { id: 1 })));
    gate.resolve(undefined);
    const outcomes = await Promise.allSettled(pending);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(isCqrsError((outcome as PromiseRejectedResult).reason, 'HANDLER_FAILED')).toBe(true);
    }
    expect(handler.calls).toHaveLength(1);
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('recovered');
    expect(handler.calls).toHaveLength(2);
  });

  it('turns a synchronous throw of the chain into a rejection of every waiter', async () => {
    const cache = caching({ ttlMs: 1000 });
    const getUser = cache(() => {
      throw new Error('sync');
    }, chainOf(GetUser));
    await expect(getUser(callOf(GetUser, { id: 1 }))).rejects.toThrow('sync');
  });

  it('releases a waiter whose signal aborts with ABORTED; the others still get the shared result', async () => {
    const gate = deferred();
    const { handler, getUser } = setup({ ttlMs: 1000 }, async () => {
      await gate.promise;
      return 'shared';
    });
    const first = new AbortController();
    const second = new AbortController();
    const a = getUser(callOf(GetUser, { id: 1 }, { signal: first.signal }));
    const b = getUser(callOf(GetUser, { id: 1 }, { signal: second.signal }));
    first.abort();
    const aborted = await a.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isCqrsError(aborted, 'ABORTED')).toBe(true);
    // The shared execution runs on: its signal did not abort.
    expect(handler.calls[0]?.signal?.aborted).toBe(false);
    gate.resolve(undefined);
    expect(await b).toBe('shared');
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('shared');
    expect(handler.calls).toHaveLength(1);
  });

  it('passes a copy with only the signal replaced: the call keeps its keys', async () => {
    const { handler, getUser } = setup();
    const call = callOf(GetUser, { id: 1 }, { signal: new AbortController().signal });
    await getUser(call);
    const passed = handler.calls[0] as Call;
    expect(Object.keys(passed)).toEqual(Object.keys(call));
    expect(passed.signal).not.toBe(call.signal);
    expect({ ...passed, signal: call.signal }).toEqual(call);
  });

  it('aborts the execution when every waiter has aborted, caches nothing, and lets the next call start afresh', async () => {
    const { handler, getUser } = setup({ ttlMs: 1000 }, (call, n) => {
      if (n > 1) return Promise.resolve('second run');
      // A handler that honours its signal, as the terminals do.
      return new Promise((_, reject) => {
        call.signal?.addEventListener('abort', () => reject(call.signal?.reason));
      });
    });
    const controllers = [new AbortController(), new AbortController()];
    const pending = controllers.map((c) => getUser(callOf(GetUser, { id: 1 }, { signal: c.signal })));
    const timedOut = new CqrsError('TIMEOUT', 'GetUser: timed out');
    controllers[0]?.abort();
    expect(handler.calls[0]?.signal?.aborted).toBe(false);
    controllers[1]?.abort(timedOut);
    expect(handler.calls[0]?.signal?.aborted).toBe(true);
    // The last waiter's reason reaches the handler: a timeout outside the cache still cancels it as a timeout.
    expect(handler.calls[0]?.signal?.reason).toBe(timedOut);
    const [a, b] = await Promise.allSettled(pending);
    expect(isCqrsError((a as PromiseRejectedResult).reason, 'ABORTED')).toBe(true);
    expect((b as PromiseRejectedResult).reason).toBe(timedOut);
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('second run');
    expect(handler.calls).toHaveLength(2);
  });

  it('runs the execution to its end when a waiter without a signal shares it, and caches it', async () => {
    const gate = deferred();
    const { handler, getUser } = setup({ ttlMs: 1000 }, async () => {
      await gate.promise;
      return 'kept';
    });
    const controller = new AbortController();
    const withSignal = getUser(callOf(GetUser, { id: 1 }, { signal: controller.signal }));
    const withoutSignal = getUser(callOf(GetUser, { id: 1 }));
    controller.abort();
    await expect(withSignal).rejects.toMatchObject({ code: 'ABORTED' });
    expect(handler.calls[0]?.signal?.aborted).toBe(false);
    gate.resolve(undefined);
    expect(await withoutSignal).toBe('kept');
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('kept');
    expect(handler.calls).toHaveLength(1);
  });

  it('refuses a call whose signal already aborted, even on a hit, without running anything', async () => {
    const { handler, getUser } = setup();
    await getUser(callOf(GetUser, { id: 1 }));
    const controller = new AbortController();
    controller.abort();
    await expect(getUser(callOf(GetUser, { id: 1 }, { signal: controller.signal }))).rejects.toMatchObject({
      code: 'ABORTED',
    });
    await expect(getUser(callOf(GetUser, { id: 2 }, { signal: controller.signal }))).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(handler.calls).toHaveLength(1);
  });
});

describe('caching: keys', () => {
  it('runs uncached, without throwing, an input the default key cannot serialize', async () => {
    const { handler, getUser } = setup();
    const cyclic: Record<string, unknown> = { id: 1 };
    cyclic.self = cyclic;
    await getUser(callOf(GetUser, cyclic));
    await getUser(callOf(GetUser, cyclic));
    await getUser(callOf(GetUser, { id: 1, callback: () => 1 }));
    await getUser(callOf(GetUser, { id: 1, callback: () => 1 }));
    expect(handler.calls).toHaveLength(4);
  });

  it('ignores metadata by default; a custom key can include it (per-tenant results)', async () => {
    const shared = setup();
    await shared.getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'a' } }));
    await shared.getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'b' } }));
    expect(shared.handler.calls).toHaveLength(1);

    const perTenant = setup({
      ttlMs: 1000,
      key: (input, call) => `${call.metadata.tenant}/${(input as { id: number }).id}`,
    });
    await perTenant.getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'a' } }));
    await perTenant.getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'b' } }));
    await perTenant.getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'a' } }));
    expect(perTenant.handler.calls).toHaveLength(2);
  });

  it('runs uncached when a custom key returns undefined', async () => {
    const { handler, getUser } = setup({ ttlMs: 1000, key: () => undefined });
    await getUser(callOf(GetUser, { id: 1 }));
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(2);
  });

  it('rejects the call with the error a custom key throws', async () => {
    const { handler, getUser } = setup({
      ttlMs: 1000,
      key: () => {
        throw new Error('bad key');
      },
    });
    await expect(getUser(callOf(GetUser, { id: 1 }))).rejects.toThrow('bad key');
    expect(handler.calls).toHaveLength(0);
  });
});

describe('caching: invalidate and clear', () => {
  it('invalidate(def, input) drops one entry; invalidate(name) every entry of that handler only', async () => {
    const cache = caching({ ttlMs: 1000 });
    const users = fakeNext();
    const orders = fakeNext();
    const getUser = cache(users.next, chainOf(GetUser));
    const getOrder = cache(orders.next, chainOf(GetOrder));
    const warm = async () => {
      await getUser(callOf(GetUser, { id: 1 }));
      await getUser(callOf(GetUser, { id: 2 }));
      await getOrder(callOf(GetOrder, { id: 1 }));
    };
    await warm();
    expect([users.calls.length, orders.calls.length]).toEqual([2, 1]);

    cache.invalidate(GetUser, { id: 1 });
    await warm();
    expect([users.calls.length, orders.calls.length]).toEqual([3, 1]);

    cache.invalidate('GetUser');
    await warm();
    expect([users.calls.length, orders.calls.length]).toEqual([5, 1]);

    cache.clear();
    await warm();
    expect([users.calls.length, orders.calls.length]).toEqual([7, 2]);
  });

  it('invalidates with a custom key, the metadata given standing for the call', async () => {
    const { cache, handler, getUser } = setup({
      ttlMs: 1000,
      key: (input, call) => `${call.metadata.tenant}/${(input as { id: number }).id}`,
    });
    await getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'a' } }));
    await getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'b' } }));
    cache.invalidate(GetUser, { id: 1 }, { tenant: 'a' });
    await getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'a' } }));
    await getUser(callOf(GetUser, { id: 1 }, { metadata: { tenant: 'b' } }));
    expect(handler.calls).toHaveLength(3);
  });

  it('does not store the result of an execution invalidated while in flight; later calls do not join it', async () => {
    const gates = [deferred(), deferred()];
    const { cache, handler, getUser } = setup({ ttlMs: 1000 }, async (_call, n) => {
      await gates[n - 1]?.promise;
      return `v${n}`;
    });
    const before = getUser(callOf(GetUser, { id: 1 }));
    cache.invalidate(GetUser, { id: 1 });
    const after = getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(2);
    // The newer execution lands first: the invalidated one, landing later, must not overwrite it.
    gates[1]?.resolve(undefined);
    expect(await after).toBe('v2');
    gates[0]?.resolve(undefined);
    expect(await before).toBe('v1');
    expect(await getUser(callOf(GetUser, { id: 1 }))).toBe('v2');
    expect(handler.calls).toHaveLength(2);
  });

  it('does nothing for a handler it never wrapped, and refuses a target that is neither', () => {
    const cache = caching({ ttlMs: 1000 });
    expect(() => cache.invalidate('Unknown', { id: 1 })).not.toThrow();
    expect(() => cache.invalidate('Unknown')).not.toThrow();
    expect(() => cache.invalidate(undefined as unknown as string)).toThrow(CqrsError);
  });
});

describe('caching: options', () => {
  it.each([
    [{ ttlMs: 0 }],
    [{ ttlMs: -5 }],
    [{ ttlMs: Number.NaN }],
    [{}],
    [{ ttlMs: 10, max: 0 }],
    [{ ttlMs: 10, max: 1.5 }],
    [{ ttlMs: 10, key: 'id' }],
    [{ ttlMs: 10, clock: {} }],
  ])('refuses %j with INVALID_REGISTRATION', (options) => {
    let thrown: unknown;
    try {
      caching(options as CachingOptions);
    } catch (err) {
      thrown = err;
    }
    expect(isCqrsError(thrown, 'INVALID_REGISTRATION')).toBe(true);
  });

  it('refuses missing options', () => {
    expect(() => caching(undefined as unknown as CachingOptions)).toThrow(/ttlMs/);
  });

  it('accepts a fractional ttlMs', async () => {
    const { handler, getUser } = setup({ ttlMs: 0.5 });
    await getUser(callOf(GetUser, { id: 1 }));
    expect(handler.calls).toHaveLength(1);
  });
});
