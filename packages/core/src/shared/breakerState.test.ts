import { describe, expect, it } from 'vitest';
import {
  type BreakerAcquireResult,
  BreakerState,
  type BreakerTicket,
  circuitStateAt,
  TRANSITIONS,
} from './breakerState.js';
import { Breaker } from './layout.js';
import { MetricsRegion } from './MetricsRegion.js';
import { wallClock } from './wallClock.js';

const options = { failureThreshold: 3, resetAfterMs: 1000, halfOpenProbes: 2 };

function setup(overrides: Partial<typeof options> = {}) {
  const region = new MetricsRegion({ threadStripes: 2, initialHandlers: 2 });
  const slot = region.allocate('Handler');
  let now = 10_000;
  const clock = () => now;
  const breaker = new BreakerState(region.buffer, slot, { ...options, ...overrides }, clock);
  return {
    region,
    slot,
    breaker,
    /** Moves the injected clock to `t` ms. */
    at(t: number) {
      now = t;
    },
  };
}

function ticketOf(result: BreakerAcquireResult): BreakerTicket {
  if (!result.admitted) throw new Error(`refused, retry after ${result.retryAfterMs} ms`);
  return result.ticket;
}

/** Admits and fails `n` calls. */
function fail(breaker: BreakerState, n: number): void {
  for (let i = 0; i < n; i++) breaker.onResult(ticketOf(breaker.tryAcquire()), false);
}

/** Opens the breaker at the current time. */
function open(breaker: BreakerState): void {
  fail(breaker, breaker.failureThreshold);
  expect(breaker.state()).toBe('open');
}

describe('BreakerState', () => {
  it('stays closed after failureThreshold − 1 consecutive failures', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    expect(breaker.state()).toBe('closed');
    expect(breaker.tryAcquire().admitted).toBe(true);
  });

  it('opens on the failureThreshold-th consecutive failure, reporting the transition once', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    const last = ticketOf(breaker.tryAcquire());
    expect(breaker.onResult(last, false)).toEqual({ from: 'closed', to: 'open', generation: 1, at: 10_000 });
    expect(breaker.state()).toBe('open');
    expect(breaker.generation()).toBe(1);
  });

  it('lets a success end the failure run', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    breaker.onResult(ticketOf(breaker.tryAcquire()), true);
    fail(breaker, 2);
    expect(breaker.state()).toBe('closed');
    fail(breaker, 1);
    expect(breaker.state()).toBe('open');
  });

  it('refuses while open with the time left, up to the last millisecond', () => {
    const { breaker, at } = setup();
    open(breaker);
    expect(breaker.tryAcquire()).toEqual({ admitted: false, retryAfterMs: 1000 });
    at(10_400.5);
    expect(breaker.tryAcquire()).toEqual({ admitted: false, retryAfterMs: 600 });
    at(10_999);
    expect(breaker.tryAcquire()).toEqual({ admitted: false, retryAfterMs: 1 });
    expect(breaker.state()).toBe('open');
  });

  it('goes half-open exactly at resetAfterMs, reported by the call that moved it', () => {
    const { breaker, at } = setup();
    open(breaker);
    at(11_000);
    const first = breaker.tryAcquire();
    expect(first).toMatchObject({
      admitted: true,
      ticket: { generation: 2, probe: true },
      transition: { from: 'open', to: 'half-open', generation: 2, at: 11_000 },
    });
    expect(breaker.state()).toBe('half-open');
    const second = breaker.tryAcquire();
    expect(second.admitted).toBe(true);
    expect(second.transition).toBeUndefined();
  });

  it('admits exactly halfOpenProbes trial calls, then refuses', () => {
    const { breaker, at } = setup({ halfOpenProbes: 3 });
    open(breaker);
    at(11_000);
    const results = Array.from({ length: 10 }, () => breaker.tryAcquire());
    expect(results.filter((r) => r.admitted)).toHaveLength(3);
    expect(results.slice(3)).toEqual(Array(7).fill({ admitted: false, retryAfterMs: 1000 }));
  });

  it('closes when every probe succeeds, and only then', () => {
    const { breaker, at } = setup();
    open(breaker);
    at(11_000);
    const probes = [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())];
    expect(breaker.onResult(probes[0]!, true)).toBeUndefined();
    expect(breaker.state()).toBe('half-open');
    expect(breaker.onResult(probes[1]!, true)).toEqual({
      from: 'half-open',
      to: 'closed',
      generation: 3,
      at: 11_000,
    });
    expect(breaker.state()).toBe('closed');
    expect(breaker.tryAcquire()).toMatchObject({ admitted: true, ticket: { generation: 3, probe: false } });
  });

  it('reopens on a failed probe, for another resetAfterMs from then', () => {
    const { breaker, at } = setup();
    open(breaker);
    at(11_000);
    const probes = [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())];
    breaker.onResult(probes[0]!, true);
    at(11_200);
    expect(breaker.onResult(probes[1]!, false)).toEqual({
      from: 'half-open',
      to: 'open',
      generation: 3,
      at: 11_200,
    });
    expect(breaker.tryAcquire()).toEqual({ admitted: false, retryAfterMs: 1000 });
    at(12_199);
    expect(breaker.tryAcquire().admitted).toBe(false);
    at(12_200);
    expect(breaker.tryAcquire()).toMatchObject({ admitted: true, transition: { to: 'half-open' } });
  });

  it('counts each transition once, by kind, beside the state: closed→open→half-open→open→half-open→closed', () => {
    const { region, slot, breaker, at } = setup({ halfOpenProbes: 1 });
    const counts = () =>
      Object.fromEntries(
        TRANSITIONS.map(([from, to], i) => [`${from}->${to}`, region.readTransitions(slot)[i]]),
      );
    expect(Object.values(counts())).toEqual([0, 0, 0, 0]);
    open(breaker);
    // Refusals while open, and a late failure, move nothing.
    expect(breaker.tryAcquire().admitted).toBe(false);
    at(11_000);
    breaker.onResult(ticketOf(breaker.tryAcquire()), false);
    at(12_000);
    breaker.onResult(ticketOf(breaker.tryAcquire()), true);
    expect(breaker.state()).toBe('closed');
    expect(counts()).toEqual({
      'closed->open': 1,
      'open->half-open': 2,
      'half-open->closed': 1,
      'half-open->open': 1,
    });
  });

  it('opens again on failures after it closed, counting the new run from zero', () => {
    const { breaker, at } = setup();
    fail(breaker, 2); // a run that the opening and closing below must forget
    fail(breaker, 1);
    at(11_000);
    for (const ticket of [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())]) {
      breaker.onResult(ticket, true);
    }
    expect(breaker.state()).toBe('closed');
    fail(breaker, 2);
    expect(breaker.state()).toBe('closed');
    const third = ticketOf(breaker.tryAcquire());
    expect(breaker.onResult(third, false)).toMatchObject({ from: 'closed', to: 'open', generation: 4 });
  });

  it('ignores a late failure from before the breaker opened', () => {
    const { breaker } = setup();
    const late = ticketOf(breaker.tryAcquire());
    open(breaker);
    const generation = breaker.generation();
    expect(breaker.onResult(late, false)).toBeUndefined();
    expect(breaker.onResult(late, true)).toBeUndefined();
    expect(breaker.state()).toBe('open');
    expect(breaker.generation()).toBe(generation);
  });

  it('ignores a late probe result from a previous half-open round', () => {
    const { breaker, at } = setup();
    open(breaker);
    at(11_000);
    const stale = ticketOf(breaker.tryAcquire());
    breaker.onResult(ticketOf(breaker.tryAcquire()), false); // reopens: round over
    at(12_000);
    const fresh = ticketOf(breaker.tryAcquire());
    expect(fresh.generation).toBe(stale.generation + 2);
    // The stale success must not count toward closing the new round…
    expect(breaker.onResult(stale, true)).toBeUndefined();
    expect(breaker.onResult(fresh, true)).toBeUndefined();
    expect(breaker.state()).toBe('half-open');
    // …nor a stale failure reopen it.
    expect(breaker.onResult(stale, false)).toBeUndefined();
    expect(breaker.state()).toBe('half-open');
    expect(breaker.onResult(ticketOf(breaker.tryAcquire()), true)).toMatchObject({ to: 'closed' });
  });

  it('ignores a late failure from an older closed round', () => {
    const { breaker, at } = setup();
    const stale = [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())];
    open(breaker);
    at(11_000);
    for (const ticket of [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())]) {
      breaker.onResult(ticket, true);
    }
    fail(breaker, 2);
    for (const ticket of stale) breaker.onResult(ticket, false);
    expect(breaker.state()).toBe('closed');
  });

  it('refuses for a full resetAfterMs while the opener has not yet published its time', () => {
    const { region, slot, breaker } = setup();
    open(breaker);
    const ints = new Int32Array(region.buffer);
    // As another thread sees the line between the opening CAS and the publication of its time.
    Atomics.store(ints, region.layout.breakerWord(slot) + Breaker.untilTag, 0);
    expect(breaker.tryAcquire(1e12)).toEqual({ admitted: false, retryAfterMs: 1000 });
  });

  it('is one breaker for every BreakerState on the same slot', () => {
    const { region, slot, breaker } = setup();
    const other = new BreakerState(region.buffer, slot, options, () => 10_000);
    open(breaker);
    expect(other.state()).toBe('open');
    expect(other.tryAcquire().admitted).toBe(false);
    expect(region.snapshot().handlers.Handler?.circuit).toBe('open');
  });

  it('keeps the breakers of different slots apart', () => {
    const { region, breaker } = setup();
    const otherSlot = region.allocate('Other');
    const other = new BreakerState(region.buffer, otherSlot, options, () => 10_000);
    open(breaker);
    expect(other.state()).toBe('closed');
  });

  it('names the option that is out of range', () => {
    const { region, slot } = setup();
    expect(() => new BreakerState(region.buffer, slot, { failureThreshold: 0 })).toThrow(
      /options\.failureThreshold/,
    );
    expect(() => new BreakerState(region.buffer, slot, { halfOpenProbes: 1.5 })).toThrow(
      /options\.halfOpenProbes/,
    );
    expect(() => new BreakerState(region.buffer, slot, { resetAfterMs: -1 })).toThrow(
      /options\.resetAfterMs/,
    );
    expect(() => new BreakerState(region.buffer, 99)).toThrow(RangeError);
  });
});

describe('BreakerState without allocation (acquire / report / release)', () => {
  it('encodes tickets as generation << 1 | probe, refusals as −retryAfterMs', () => {
    const { breaker, at } = setup({ halfOpenProbes: 1 });
    expect(breaker.acquire()).toBe(0);
    open(breaker);
    expect(breaker.takeTransition()).toBeUndefined(); // the opening was reported by onResult
    expect(breaker.acquire()).toBe(-1000);
    at(11_000);
    expect(breaker.acquire()).toBe(2 * 2 + 1);
    expect(breaker.takeTransition()).toMatchObject({ from: 'open', to: 'half-open', generation: 2 });
    expect(breaker.takeTransition()).toBeUndefined();
    expect(breaker.acquire()).toBe(-1000);
    expect(breaker.report(5, true)).toMatchObject({ from: 'half-open', to: 'closed' });
  });

  it('reads the clock only when it needs a time', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('A');
    let reads = 0;
    const breaker = new BreakerState(region.buffer, slot, { failureThreshold: 2 }, () => {
      reads++;
      return 0;
    });
    for (let i = 0; i < 10; i++) breaker.report(breaker.acquire(), true);
    breaker.report(breaker.acquire(), false);
    expect(reads).toBe(0);
    breaker.report(breaker.acquire(), false); // opens: the transition is timed
    expect(reads).toBe(1);
  });

  it('gives a probe place back on release, so another call may probe', () => {
    const { breaker, at } = setup({ halfOpenProbes: 1 });
    open(breaker);
    at(11_000);
    const probe = breaker.acquire();
    expect(breaker.acquire()).toBeLessThan(0);
    breaker.release(probe);
    const second = breaker.acquire();
    expect(second).toBe(probe);
    expect(breaker.acquire()).toBeLessThan(0);
    expect(breaker.report(second, true)).toMatchObject({ to: 'closed' });
  });

  it('changes nothing when releasing a closed-state ticket or one of a finished round', () => {
    const { breaker, at } = setup({ halfOpenProbes: 2 });
    const closedTicket = breaker.acquire();
    fail(breaker, 2);
    breaker.release(closedTicket);
    fail(breaker, 1);
    expect(breaker.state()).toBe('open');
    at(11_000);
    const stale = ticketOf(breaker.tryAcquire());
    breaker.onResult(ticketOf(breaker.tryAcquire()), false); // reopens
    at(12_000);
    const fresh = [ticketOf(breaker.tryAcquire()), ticketOf(breaker.tryAcquire())];
    breaker.release(stale); // must not free a place of the new round
    expect(breaker.tryAcquire().admitted).toBe(false);
    for (const ticket of fresh) breaker.onResult(ticket, true);
    expect(breaker.state()).toBe('closed');
  });
});

describe('circuitStateAt', () => {
  function wallBreaker(resetAfterMs: number) {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('A');
    const breaker = new BreakerState(region.buffer, slot, { failureThreshold: 1, resetAfterMs });
    const ints = new Int32Array(region.buffer);
    const index = region.layout.breakerWord(slot) + Breaker.state;
    return { region, breaker, read: (now?: number) => circuitStateAt(ints, index, now) };
  }

  it('reads an open breaker past its reset time as half-open, before any call moved it', () => {
    const { breaker, read } = wallBreaker(1000);
    const openedAt = wallClock();
    breaker.report(breaker.acquire(), false, openedAt);
    expect(read(openedAt + 999)).toBe('open');
    expect(read(openedAt + 1000.001)).toBe('half-open');
    expect(breaker.state()).toBe('open');
  });

  it('shows it in snapshots once resetAfterMs has passed on the wall clock', async () => {
    const resetAfterMs = 100;
    const { region, breaker } = wallBreaker(resetAfterMs);
    const openedAt = wallClock();
    breaker.report(breaker.acquire(), false, openedAt);
    // Each snapshot is judged by the wall clock around it (a loaded machine may take it late): open while
    // surely before the reset time, half-open once surely after it; then done.
    for (const deadline = performance.now() + 15_000; performance.now() < deadline; ) {
      const before = wallClock();
      const circuit = region.snapshot().handlers.A?.circuit;
      const after = wallClock();
      if (after < openedAt + resetAfterMs) expect(circuit).toBe('open');
      else if (before > openedAt + resetAfterMs) {
        expect(circuit).toBe('half-open');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error('the snapshot never read half-open');
  });

  it('reads as stored for a breaker on an injected clock, whose times it cannot compare', () => {
    const { region, slot, breaker } = setup();
    open(breaker);
    const ints = new Int32Array(region.buffer);
    expect(circuitStateAt(ints, region.layout.breakerWord(slot) + Breaker.state, 1e15)).toBe('open');
  });
});
