import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isCqrsError } from '../errors/CqrsError.js';
import { defineCommand } from '../messages/defineCommand.js';
import { MetricsRegion } from '../shared/MetricsRegion.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { newCall } from './newCall.js';
import { type RateLimitOptions, rateLimit } from './rateLimit.js';

const definition = defineCommand('Limited', { input: z.number() });

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

/** Settles `n` calls one after another; returns how many were admitted (and checks the refusals). */
async function admitted(chain: Next, name: string, n: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < n; i++) {
    try {
      await chain(callOf(name));
      count++;
    } catch (err) {
      if (!isCqrsError(err, 'RATE_LIMITED')) throw err;
    }
  }
  return count;
}

function clocked() {
  let now = 1_000;
  return {
    clock: () => now,
    at(t: number) {
      now = t;
    },
  };
}

describe('rateLimit', () => {
  it('admits the burst at once, then refuses with RATE_LIMITED and the wait, without calling next', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const time = clocked();
    let reached = 0;
    const chain = rateLimit({ limit: 10, windowMs: 1000, burst: 3, clock: time.clock })(
      async () => {
        reached++;
        return 'ok';
      },
      chainOf(region, 'Limited'),
    );
    expect(await admitted(chain, 'Limited', 3)).toBe(3);
    const refused = await chain(callOf('Limited')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 100, handler: 'Limited' });
    expect(reached).toBe(3);
    time.at(1_040);
    await expect(chain(callOf('Limited'))).rejects.toMatchObject({ retryAfterMs: 60 });
  });

  it('then admits one call per windowMs / limit', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const time = clocked();
    const chain = rateLimit({ limit: 10, windowMs: 1000, burst: 3, clock: time.clock })(
      async () => 'ok',
      chainOf(region, 'Limited'),
    );
    await admitted(chain, 'Limited', 3);
    time.at(1_099);
    expect(await admitted(chain, 'Limited', 5)).toBe(0);
    time.at(1_100);
    expect(await admitted(chain, 'Limited', 5)).toBe(1);
    time.at(1_500);
    // Idle since the last due time: the burst is back, and no more.
    expect(await admitted(chain, 'Limited', 10)).toBe(3);
  });

  it('defaults the burst to the limit and the key to the handler', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const time = clocked();
    const limit = rateLimit({ limit: 4, windowMs: 1000, clock: time.clock });
    const a = limit(async () => 'a', chainOf(region, 'A'));
    const b = limit(async () => 'b', chainOf(region, 'B'));
    expect(await admitted(a, 'A', 6)).toBe(4);
    expect(await admitted(b, 'B', 6)).toBe(4);
  });

  it("shares one budget among a bus's handlers with key: 'bus'", async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const time = clocked();
    const limit = rateLimit({ limit: 5, windowMs: 1000, key: 'bus', clock: time.clock });
    const a = limit(async () => 'a', chainOf(region, 'A'));
    const b = limit(async () => 'b', chainOf(region, 'B'));
    expect(await admitted(a, 'A', 3)).toBe(3);
    expect(await admitted(b, 'B', 5)).toBe(2);
    expect(await admitted(a, 'A', 1)).toBe(0);
    time.at(1_200);
    expect(await admitted(b, 'B', 5)).toBe(1);
    // Another bus on the same region has a budget of its own.
    const other = limit(async () => 'c', chainOf(region, 'A', 'bus#1'));
    expect(await admitted(other, 'A', 9)).toBe(5);
  });

  it('applies a handler limit and a bus limit on one handler independently', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const time = clocked();
    const chain = chainOf(region, 'A');
    const perHandler = rateLimit({ limit: 2, windowMs: 1000, clock: time.clock });
    const perBus = rateLimit({ limit: 3, windowMs: 1000, key: 'bus', clock: time.clock });
    const composed = perBus(
      perHandler(async () => 'ok', chain),
      chain,
    );
    expect(await admitted(composed, 'A', 5)).toBe(2);
    // The bus budget was spent by all five passes (it sits outside): 3 admitted, so B sees none left.
    const b = perBus(async () => 'ok', chainOf(region, 'B'));
    expect(await admitted(b, 'B', 2)).toBe(0);
  });

  it('refuses two limiters of the same key on one handler, and other settings on a shared budget', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const chain = chainOf(region, 'A');
    const next: Next = async () => 'ok';
    rateLimit({ limit: 1, windowMs: 1000 })(next, chain);
    expect(() => rateLimit({ limit: 1, windowMs: 1000 })(next, chain)).toThrow(/already has a rate limit/);
    rateLimit({ limit: 5, windowMs: 1000, key: 'bus' })(next, chain);
    expect(() => rateLimit({ limit: 6, windowMs: 1000, key: 'bus' })(next, chainOf(region, 'B'))).toThrow(
      /other settings/,
    );
    expect(() =>
      rateLimit({ limit: 5, windowMs: 1000, key: 'bus' })(next, chainOf(region, 'B')),
    ).not.toThrow();
  });

  it('names the option that is wrong, with INVALID_REGISTRATION', () => {
    const cases: [RateLimitOptions, RegExp][] = [
      [{ limit: 0, windowMs: 1000 }, /rateLimit: options\.limit must be a positive integer/],
      [{ limit: 1.5, windowMs: 1000 }, /options\.limit/],
      [{ limit: 1, windowMs: 0 }, /rateLimit: options\.windowMs must be/],
      [{ limit: 1, windowMs: Number.NaN }, /options\.windowMs/],
      [{ limit: 1, windowMs: 1000, burst: 0 }, /rateLimit: options\.burst must be/],
      [{ limit: 1, windowMs: 1000, key: 'user' as never }, /rateLimit: options\.key must be/],
      [{ limit: 1, windowMs: 1000, clock: 5 as never }, /options\.clock/],
      [{ limit: 1e9, windowMs: 0.5 }, /nanosecond/],
      [undefined as never, /options must be an object/],
    ];
    for (const [options, message] of cases) {
      let thrown: unknown;
      try {
        rateLimit(options);
      } catch (err) {
        thrown = err;
      }
      expect(isCqrsError(thrown, 'INVALID_REGISTRATION')).toBe(true);
      expect((thrown as Error).message).toMatch(message);
    }
  });
});

const YEAR_MS = 365.25 * 86_400_000;

describe('rateLimit over long windows', () => {
  it('refuses a window per call × burst past the 64-bit clock word (it used to admit every call)', () => {
    for (const options of [
      { limit: 1, windowMs: 1e13 },
      { limit: 1, windowMs: 150 * YEAR_MS },
      { limit: 10, windowMs: 100 * YEAR_MS, burst: 20 },
    ]) {
      expect(() => rateLimit(options)).toThrow(
        expect.objectContaining({
          code: 'INVALID_REGISTRATION',
          message: expect.stringMatching(/146 years/),
        }),
      );
    }
  });

  it('keeps refusing past the burst over the longest window it accepts', async () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    // The wall clock (ms since 1970): the largest clock values the word ever holds.
    const chain = rateLimit({ limit: 1, windowMs: 140 * YEAR_MS })(async () => 'ok', chainOf(region, 'Long'));
    expect(await admitted(chain, 'Long', 5)).toBe(1);
  });
});
