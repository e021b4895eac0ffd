import { describe, expect, it } from 'vitest';
import { Gcra } from './gcra.js';
import { MetricsRegion } from './MetricsRegion.js';

function region(): MetricsRegion {
  const r = new MetricsRegion({ threadStripes: 1, initialHandlers: 2 });
  r.allocate('A');
  r.allocate('B');
  return r;
}

describe('Gcra', () => {
  it('admits a burst at once, then refuses with the time to the next slot', () => {
    const limiter = new Gcra(region().buffer, { limit: 10, windowMs: 1000, burst: 3 });
    expect([1, 2, 3].map(() => limiter.tryAcquire(0, 5_000))).toEqual(Array(3).fill({ allowed: true }));
    expect(limiter.tryAcquire(0, 5_000)).toEqual({ allowed: false, retryAfterMs: 100 });
    expect(limiter.tryAcquire(0, 5_040)).toEqual({ allowed: false, retryAfterMs: 60 });
  });

  it('then admits one call per interval, at the interval exactly', () => {
    const limiter = new Gcra(region().buffer, { limit: 10, windowMs: 1000, burst: 3 });
    for (let i = 0; i < 3; i++) limiter.tryAcquire(0, 5_000);
    expect(limiter.tryAcquire(0, 5_099.999).allowed).toBe(false);
    expect(limiter.tryAcquire(0, 5_100).allowed).toBe(true);
    expect(limiter.tryAcquire(0, 5_100).allowed).toBe(false);
    expect(limiter.tryAcquire(0, 5_200).allowed).toBe(true);
  });

  it('admits burst + elapsed / interval over a saturated run', () => {
    const limiter = new Gcra(region().buffer, { limit: 3, windowMs: 1000, burst: 5 });
    let admitted = 0;
    // Calls every 7 ms for 60 s of injected time; the interval (333.3 ms) does not divide evenly.
    for (let t = 0; t <= 60_000; t += 7) if (limiter.tryAcquire(0, 1_000 + t).allowed) admitted++;
    const expected = 5 + Math.floor((Math.floor(60_000 / 7) * 7) / (1000 / 3));
    expect(Math.abs(admitted - expected)).toBeLessThanOrEqual(1);
  });

  it('refills to the burst after an idle period, not beyond', () => {
    const limiter = new Gcra(region().buffer, { limit: 10, windowMs: 1000, burst: 3 });
    for (let i = 0; i < 3; i++) limiter.tryAcquire(0, 5_000);
    const later = Array.from({ length: 5 }, () => limiter.tryAcquire(0, 60_000).allowed);
    expect(later).toEqual([true, true, true, false, false]);
  });

  it('defaults the burst to the limit', () => {
    const limiter = new Gcra(region().buffer, { limit: 4, windowMs: 1000 });
    expect(limiter.burst).toBe(4);
    const first = Array.from({ length: 5 }, () => limiter.tryAcquire(0, 1_000).allowed);
    expect(first).toEqual([true, true, true, true, false]);
  });

  it('keeps slots apart, and shares a slot between instances on the same buffer', () => {
    const r = region();
    const one = new Gcra(r.buffer, { limit: 1, windowMs: 1000, burst: 1 });
    const two = new Gcra(r.buffer, { limit: 1, windowMs: 1000, burst: 1 });
    expect(one.tryAcquire(0, 1_000).allowed).toBe(true);
    expect(one.tryAcquire(1, 1_000).allowed).toBe(true);
    expect(two.tryAcquire(0, 1_000).allowed).toBe(false);
  });

  it('reaches slots registered after it was made, once the region grew', () => {
    const r = new MetricsRegion({ threadStripes: 1, initialHandlers: 1 });
    const limiter = new Gcra(r.buffer, { limit: 1, windowMs: 1000, burst: 1 });
    let slot = r.allocate('first');
    for (let i = 0; i < 20; i++) slot = r.allocate(`h${i}`);
    expect(limiter.tryAcquire(slot, 1_000).allowed).toBe(true);
    expect(limiter.tryAcquire(slot, 1_000).allowed).toBe(false);
    expect(limiter.tryAcquire(0, 1_000).allowed).toBe(true);
  });

  it('forgets a slot on reset', () => {
    const limiter = new Gcra(region().buffer, { limit: 1, windowMs: 1000, burst: 1 });
    limiter.tryAcquire(0, 1_000);
    expect(limiter.tryAcquire(0, 1_000).allowed).toBe(false);
    limiter.reset(0);
    expect(limiter.tryAcquire(0, 1_000).allowed).toBe(true);
  });

  it('reads time from the injected clock when none is passed', () => {
    let now = 1_000;
    const limiter = new Gcra(region().buffer, { limit: 1, windowMs: 1000, burst: 1 }, () => now);
    expect(limiter.tryAcquire(0).allowed).toBe(true);
    expect(limiter.tryAcquire(0)).toEqual({ allowed: false, retryAfterMs: 1000 });
    now = 2_000;
    expect(limiter.tryAcquire(0).allowed).toBe(true);
  });

  it('names the option that is out of range, and refuses unknown slots', () => {
    const buffer = region().buffer;
    expect(() => new Gcra(buffer, { limit: 0, windowMs: 1000 })).toThrow(/options\.limit/);
    expect(() => new Gcra(buffer, { limit: 1, windowMs: 0 })).toThrow(/options\.windowMs/);
    expect(() => new Gcra(buffer, { limit: 1, windowMs: 1000, burst: 0 })).toThrow(/options\.burst/);
    expect(() => new Gcra(new SharedArrayBuffer(256), { limit: 1, windowMs: 1 })).toThrow(TypeError);
    const limiter = new Gcra(buffer, { limit: 1, windowMs: 1000 });
    expect(() => limiter.tryAcquire(1_000_000, 0)).toThrow(RangeError);
  });
});
