import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import { defineCommand } from '../messages/defineCommand.js';
import { MetricsRegion } from '../shared/MetricsRegion.js';
import { type CircuitBreakerOptions, type CircuitStateChange, circuitBreaker } from './circuitBreaker.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { newCall } from './newCall.js';

const definition = defineCommand('Flaky', { input: z.number() });

function callOf(name: string): Call {
  return newCall(definition, 1, {}, name);
}

/** A ChainContext as the Dispatcher builds it: slots in a real metrics region, keyed as the bus keys them. */
function chainOf(region: MetricsRegion, name: string, bus = 'bus#0'): ChainContext {
  return {
    name,
    kind: 'command',
    definition,
    shared: {
      region,
      handlerSlot: () => region.allocate(`command:${name}`),
      busSlot: () => region.allocate(bus),
    },
  };
}

/** A `next` whose every call is recorded and settled by the test. */
function scriptedNext() {
  const calls: { resolve(v: unknown): void; reject(e: unknown): void }[] = [];
  const next: Next = () =>
    new Promise((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { next, calls };
}

const fails = (code: ErrorCode = 'HANDLER_FAILED') => new CqrsError(code, `failed with ${code}`);

function setup(options: Omit<CircuitBreakerOptions, 'clock' | 'onStateChange'> = {}, name = 'Flaky') {
  const region = new MetricsRegion({ threadStripes: 1, initialHandlers: 2 });
  let now = 50_000;
  const changes: CircuitStateChange[] = [];
  const middleware = circuitBreaker({
    failureThreshold: 3,
    resetAfterMs: 1000,
    halfOpenProbes: 2,
    ...options,
    clock: () => now,
    onStateChange: (change) => changes.push(change),
  });
  let outcome: { value?: unknown; error?: unknown } = {};
  let reached = 0;
  const next: Next = async () => {
    reached++;
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  };
  const chain = middleware(next, chainOf(region, name));
  return {
    region,
    changes,
    middleware,
    chain,
    reached: () => reached,
    at(t: number) {
      now = t;
    },
    /** Runs one call whose handler succeeds (or rejects with `error`); resolves with the settled outcome. */
    async run(error?: unknown): Promise<{ ok: boolean; error?: unknown }> {
      outcome = error === undefined ? { value: 'ok' } : { error };
      try {
        await chain(callOf(name));
        return { ok: true };
      } catch (err) {
        return { ok: false, error: err };
      }
    },
  };
}

async function refusal(pending: Promise<unknown>): Promise<CqrsError> {
  const err = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isCqrsError(err, 'CIRCUIT_OPEN')) throw new Error(`expected CIRCUIT_OPEN, got ${String(err)}`);
  return err;
}

describe('circuitBreaker', () => {
  it('stays closed after failureThreshold − 1 consecutive failures and opens on the next', async () => {
    const b = setup();
    for (let i = 0; i < 2; i++) await b.run(fails());
    expect(b.changes).toEqual([]);
    expect(b.region.snapshot().handlers['command:Flaky']?.circuit).toBe('closed');
    expect((await b.run()).ok).toBe(true);
    for (let i = 0; i < 3; i++) await b.run(fails());
    expect(b.changes).toEqual([{ handler: 'Flaky', from: 'closed', to: 'open', at: 50_000 }]);
    expect(b.region.snapshot().handlers['command:Flaky']?.circuit).toBe('open');
  });

  it('refuses with CIRCUIT_OPEN while open, without calling next, and counts retryAfterMs down', async () => {
    const b = setup();
    for (let i = 0; i < 3; i++) await b.run(fails());
    const reached = b.reached();
    const first = await refusal(b.chain(callOf('Flaky')));
    expect(first).toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 1000, handler: 'Flaky' });
    b.at(50_250);
    expect((await refusal(b.chain(callOf('Flaky')))).retryAfterMs).toBe(750);
    b.at(50_999.5);
    expect((await refusal(b.chain(callOf('Flaky')))).retryAfterMs).toBe(1);
    expect(b.reached()).toBe(reached);
  });

  it('admits exactly halfOpenProbes trial calls after resetAfterMs and closes when all succeed', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    let now = 0;
    const changes: string[] = [];
    const scripted = scriptedNext();
    const chain = circuitBreaker({
      failureThreshold: 1,
      resetAfterMs: 500,
      halfOpenProbes: 3,
      clock: () => now,
      onStateChange: (c) => changes.push(`${c.from}→${c.to}@${c.at}`),
    })(scripted.next, chainOf(region, 'Flaky'));
    const opening = chain(callOf('Flaky'));
    scripted.calls[0]?.reject(fails('TIMEOUT'));
    await expect(opening).rejects.toMatchObject({ code: 'TIMEOUT' });
    now = 500;
    const calls = Array.from({ length: 10 }, () => chain(callOf('Flaky')));
    expect(scripted.calls).toHaveLength(4); // the opening call + 3 probes
    for (const refused of calls.slice(3)) {
      expect(await refusal(refused)).toMatchObject({ retryAfterMs: 500 });
    }
    for (const probe of scripted.calls.slice(1)) probe.resolve('fine');
    await Promise.all(calls.slice(0, 3));
    expect(changes).toEqual(['closed→open@0', 'open→half-open@500', 'half-open→closed@500']);
    expect(region.snapshot().handlers['command:Flaky']?.circuit).toBe('closed');
  });

  it('reports closed → open → half-open → closed → open, each once', async () => {
    const b = setup({ halfOpenProbes: 1 });
    for (let i = 0; i < 3; i++) await b.run(fails());
    b.at(51_000);
    expect((await b.run()).ok).toBe(true);
    b.at(52_000);
    for (let i = 0; i < 2; i++) await b.run(fails('WORKER_CRASHED'));
    expect(b.changes.map((c) => c.to)).toEqual(['open', 'half-open', 'closed']);
    await b.run(fails('WORKER_CRASHED'));
    expect(b.changes.map((c) => `${c.from}→${c.to}@${c.at}`)).toEqual([
      'closed→open@50000',
      'open→half-open@51000',
      'half-open→closed@51000',
      'closed→open@52000',
    ]);
  });

  it('reopens on a failed probe, for another resetAfterMs', async () => {
    const b = setup({ halfOpenProbes: 1 });
    for (let i = 0; i < 3; i++) await b.run(fails());
    b.at(51_000);
    await b.run(fails());
    expect(b.changes.map((c) => c.to)).toEqual(['open', 'half-open', 'open']);
    b.at(51_999);
    expect((await refusal(b.chain(callOf('Flaky')))).retryAfterMs).toBe(1);
  });

  it.each<ErrorCode>([
    'VALIDATION',
    'ABORTED',
    'RATE_LIMITED',
    'NOT_CLONEABLE',
    'OVERLOADED',
    'CIRCUIT_OPEN',
  ])('neither counts nor ends a failure run on %s', async (code) => {
    const b = setup();
    await b.run(fails());
    await b.run(fails());
    for (let i = 0; i < 5; i++) expect((await b.run(fails(code))).error).toMatchObject({ code });
    expect(b.changes).toEqual([]);
    await b.run(fails());
    expect(b.changes.map((c) => c.to)).toEqual(['open']);
  });

  it('does not count an error that is not a CqrsError (it did not come from a handler)', async () => {
    const b = setup();
    for (let i = 0; i < 5; i++) await b.run(new Error('from some middleware'));
    expect(b.changes).toEqual([]);
  });

  it('gives a half-open probe place back when the probe ends neither way', async () => {
    const b = setup({ halfOpenProbes: 1 });
    for (let i = 0; i < 3; i++) await b.run(fails());
    b.at(51_000);
    expect((await b.run(fails('ABORTED'))).error).toMatchObject({ code: 'ABORTED' });
    expect((await b.run(fails('VALIDATION'))).error).toMatchObject({ code: 'VALIDATION' });
    // The place is free again: the next call is the probe, and its success closes.
    expect((await b.run()).ok).toBe(true);
    expect(b.changes.map((c) => c.to)).toEqual(['open', 'half-open', 'closed']);
  });

  it('lets isFailure decide what counts', async () => {
    const b = setup({ isFailure: (err) => err instanceof Error && err.message === 'boom' });
    for (let i = 0; i < 3; i++) await b.run(fails('HANDLER_FAILED'));
    expect(b.changes).toEqual([]);
    for (let i = 0; i < 3; i++) await b.run(new Error('boom'));
    expect(b.changes.map((c) => c.to)).toEqual(['open']);
  });

  it('passes results and errors through unchanged', async () => {
    const b = setup();
    const err = fails();
    await expect(b.run(err)).resolves.toEqual({ ok: false, error: err });
    const chain = circuitBreaker()(async () => 42, chainOf(new MetricsRegion({ threadStripes: 1 }), 'X'));
    await expect(chain(callOf('X'))).resolves.toBe(42);
  });

  it('turns a next that throws synchronously into a rejection', async () => {
    const chain = circuitBreaker({ failureThreshold: 1 })(
      () => {
        throw fails();
      },
      chainOf(new MetricsRegion({ threadStripes: 1 }), 'Sync'),
    );
    await expect(chain(callOf('Sync'))).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
    await expect(chain(callOf('Sync'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('gives each handler its own breaker when one factory is used bus-wide', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const shared = circuitBreaker({ failureThreshold: 1, clock: () => 0 });
    const failing = shared(async () => Promise.reject(fails()), chainOf(region, 'A'));
    const healthy = shared(async () => 'ok', chainOf(region, 'B'));
    await expect(failing(callOf('A'))).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
    await expect(failing(callOf('A'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    await expect(healthy(callOf('B'))).resolves.toBe('ok');
    expect(region.snapshot().handlers).toMatchObject({
      'command:A': { circuit: 'open' },
      'command:B': { circuit: 'closed' },
    });
  });

  it('is one breaker per handler across chains on the same region (another bus on the same pool)', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const options = { failureThreshold: 2, clock: () => 0 };
    const busA = circuitBreaker(options)(async () => Promise.reject(fails()), chainOf(region, 'A', 'bus#1'));
    const busB = circuitBreaker(options)(async () => 'ok', chainOf(region, 'A', 'bus#2'));
    await expect(busA(callOf('A'))).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
    await expect(busA(callOf('A'))).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
    await expect(busB(callOf('A'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('refuses a second breaker on one handler, and one with other settings on a shared handler', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const chain = chainOf(region, 'A');
    const next: Next = async () => 'ok';
    circuitBreaker()(next, chain);
    expect(() => circuitBreaker()(next, chain)).toThrow(/already has a circuit breaker/);
    expect(() => circuitBreaker({ failureThreshold: 9 })(next, chainOf(region, 'A', 'bus#2'))).toThrow(
      /other settings/,
    );
    expect(() => circuitBreaker()(next, chainOf(region, 'A', 'bus#2'))).not.toThrow();
  });

  it('survives an onStateChange listener that throws', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const chain = circuitBreaker({
        failureThreshold: 1,
        onStateChange: () => {
          throw new Error('listener bug');
        },
      })(async () => Promise.reject(fails()), chainOf(region, 'A'));
      await expect(chain(callOf('A'))).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('names the option that is wrong, with INVALID_REGISTRATION', () => {
    const cases: [CircuitBreakerOptions, RegExp][] = [
      [{ failureThreshold: 0 }, /circuitBreaker: options\.failureThreshold must be/],
      [{ failureThreshold: 2.5 }, /options\.failureThreshold/],
      [{ halfOpenProbes: 70_000 }, /circuitBreaker: options\.halfOpenProbes must be/],
      [{ resetAfterMs: 0 }, /circuitBreaker: options\.resetAfterMs must be/],
      [{ resetAfterMs: Number.POSITIVE_INFINITY }, /options\.resetAfterMs/],
      [{ isFailure: 'yes' as never }, /circuitBreaker: options\.isFailure must be a function/],
      [{ onStateChange: 1 as never }, /options\.onStateChange/],
      [{ clock: {} as never }, /options\.clock/],
    ];
    for (const [options, message] of cases) {
      let thrown: unknown;
      try {
        circuitBreaker(options);
      } catch (err) {
        thrown = err;
      }
      expect(isCqrsError(thrown, 'INVALID_REGISTRATION')).toBe(true);
      expect((thrown as Error).message).toMatch(message);
    }
    expect(() => circuitBreaker(null as never)).toThrow(/options must be an object/);
  });
});
