import { describe, expect, it } from 'vitest';
import { CqrsError } from '../errors/CqrsError.js';
import { BreakerState } from './breakerState.js';
import { BUCKETS, bucketIndex, bucketLowerBound, bucketUpperBound, OVERFLOW_BUCKET } from './histogram.js';
import { MAIN_STRIPE } from './layout.js';
import { MetricsRegion } from './MetricsRegion.js';
import { MAX_LATENCY_MICROS, MetricsView } from './MetricsView.js';

describe('MetricsRegion', () => {
  it('sums every stripe into the API.md snapshot, latencies in ms', () => {
    const region = new MetricsRegion({ threadStripes: 3 });
    const slot = region.allocate('CreateUser');
    region.record(slot, MAIN_STRIPE, 1_000, false);
    region.record(slot, 1, 2_000, true);
    region.record(slot, 2, 3_000, false);
    region.record(slot, 3, 10_000, true);
    region.incrementInFlight(slot);
    const snapshot = region.snapshot();
    expect(snapshot).toMatchObject({ executions: 4, failures: 2, inFlight: 1 });
    const handler = snapshot.handlers.CreateUser;
    expect(handler).toMatchObject({ executions: 4, failures: 2, inFlight: 1, circuit: 'closed' });
    expect(handler?.latency.mean).toBe(4);
    expect(handler?.latency.max).toBe(10);
    const p50 = (handler?.latency.p50 ?? 0) * 1000;
    expect(p50).toBeGreaterThanOrEqual(bucketLowerBound(bucketIndex(2_000)));
    expect(p50).toBeLessThan(bucketUpperBound(bucketIndex(2_000)));
    expect(handler?.latency.p99).toBe(10);
  });

  it('totals the handlers of the region', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const a = region.allocate('A');
    const b = region.allocate('B');
    region.record(a, 0, 10, false);
    region.record(b, 1, 10, true);
    region.recordCount(b, true);
    region.incrementInFlight(a);
    region.incrementInFlight(b);
    region.decrementInFlight(b);
    const snapshot = region.snapshot();
    expect(snapshot).toMatchObject({ executions: 3, failures: 2, inFlight: 1 });
    expect(Object.keys(snapshot.handlers)).toEqual(['A', 'B']);
  });

  it('counts a refusal as an execution and a failure, without a latency', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('Q');
    region.record(slot, 1, 4_000, false);
    region.recordCount(slot, true);
    region.recordCount(slot, true);
    const handler = region.snapshot().handlers.Q;
    expect(handler).toMatchObject({ executions: 3, failures: 2 });
    expect(handler?.latency.mean).toBe(4);
    expect(region.readHistogram(slot).reduce((sum, n) => sum + n, 0)).toBe(1);
  });

  it('counts a late failure of a call a thread counted, when the main stripe has no execution', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('Q');
    region.record(slot, 1, 1_000, false);
    region.recordLateFailure(slot);
    expect(region.snapshot().handlers.Q).toMatchObject({ executions: 1, failures: 1 });
  });

  it('counts failures by error code, per handler, UNKNOWN for an error without one', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const a = region.allocate('A');
    region.recordFailureCode(a, new CqrsError('TIMEOUT', 't'));
    region.recordFailureCode(a, new CqrsError('TIMEOUT', 't'));
    region.recordFailureCode(a, new Error('plain'));
    const handlers = region.snapshot().handlers;
    expect(handlers.A?.failuresByCode).toEqual({ TIMEOUT: 2, UNKNOWN: 1 });
  });

  it('keys handlers by name whatever the name', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    region.recordCount(region.allocate('__proto__'), true);
    const snapshot = region.snapshot();
    expect(Object.keys(snapshot.handlers)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(snapshot.handlers)).toBe(Object.prototype);
    expect(snapshot.executions).toBe(1);
  });

  it('reports zero latencies before any call was timed', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    region.allocate('Idle');
    expect(region.snapshot().handlers.Idle).toEqual({
      executions: 0,
      failures: 0,
      inFlight: 0,
      latency: { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 },
      circuit: 'closed',
      failuresByCode: {},
    });
  });

  it('rounds fractional latencies and clamps out-of-range ones', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('X');
    region.record(slot, 0, 2.6, false);
    region.record(slot, 0, -5, false);
    region.record(slot, 0, Number.NaN, false);
    region.record(slot, 0, 1e12, false);
    const counts = region.readHistogram(slot);
    expect(counts[3]).toBe(1);
    expect(counts[0]).toBe(2);
    expect(counts[OVERFLOW_BUCKET]).toBe(1);
    expect(region.snapshot().handlers.X?.latency.max).toBe(MAX_LATENCY_MICROS / 1000);
  });

  it('gives the same slot to the same name and a new one to each new name', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    expect(region.allocate('A')).toBe(0);
    expect(region.allocate('B')).toBe(1);
    expect(region.allocate('A')).toBe(0);
    expect(region.slotOf('B')).toBe(1);
    expect(region.slotOf('C')).toBeUndefined();
    expect(region.handlerNames).toEqual(['A', 'B']);
  });

  it('grows without losing counts, and a view made before growing sees the new slots', () => {
    const region = new MetricsRegion({ threadStripes: 2, initialHandlers: 1, maxHandlers: 40 });
    const early = new MetricsView(region.buffer);
    const first = region.allocate('first');
    early.record(first, 1, 100, true);
    const before = region.buffer.byteLength;
    let last = first;
    for (let i = 0; i < 39; i++) last = region.allocate(`h${i}`);
    expect(region.buffer.byteLength).toBeGreaterThan(before);
    early.record(last, 2, 200, false);
    early.record(first, 2, 300, false);
    const snapshot = region.snapshot();
    expect(snapshot.handlers.first).toMatchObject({ executions: 2, failures: 1 });
    expect(snapshot.handlers.h38).toMatchObject({ executions: 1, failures: 0 });
    expect(snapshot.executions).toBe(3);
  });

  it('refuses a handler beyond maxHandlers', () => {
    const region = new MetricsRegion({ threadStripes: 1, initialHandlers: 1, maxHandlers: 2 });
    region.allocate('a');
    region.allocate('b');
    expect(() => region.allocate('c')).toThrow(/options\.maxHandlers/);
  });

  it('hands pool threads stripes 1..S in turn', () => {
    const region = new MetricsRegion({ threadStripes: 3 });
    const view = new MetricsView(region.buffer);
    expect(Array.from({ length: 7 }, () => view.claimStripe())).toEqual([1, 2, 3, 1, 2, 3, 1]);
  });

  it('keeps each stripe and each slot in its own memory', () => {
    const region = new MetricsRegion({ threadStripes: 2, initialHandlers: 3 });
    const slots = ['a', 'b', 'c'].map((name) => region.allocate(name));
    for (const slot of slots) {
      for (let stripe = 0; stripe < region.stripes; stripe++) {
        for (let i = 0; i <= slot * 3 + stripe; i++) region.record(slot, stripe, 2 ** 25 + i, i % 2 === 0);
      }
    }
    for (const slot of slots) {
      const expected = [0, 1, 2].reduce((sum, stripe) => sum + slot * 3 + stripe + 1, 0);
      const counts = region.readHistogram(slot);
      expect(counts.reduce((sum, n) => sum + n, 0)).toBe(expected);
      expect(region.handlerMetrics(slot).executions).toBe(expected);
    }
    expect(region.readHistogram(0)).toHaveLength(BUCKETS);
  });

  it('keeps call durations and queue waits per handler beside the key waits, each with its sum', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const a = region.allocate('A');
    const b = region.allocate('B');
    region.recordCallDuration(a, 1_500.4);
    region.recordCallDuration(a, 0);
    region.recordQueueWait(a, 70_000);
    region.recordQueueWait(b, 3);
    region.recordKeyWait(b, 9);
    const count = (h: { counts: number[] }) => h.counts.reduce((sum, n) => sum + n, 0);
    const call = region.readCallDuration(a);
    expect(count(call)).toBe(2);
    expect(call.sumMicros).toBe(1_500);
    expect(call.counts[bucketIndex(1_500)]).toBe(1);
    expect(call.counts[0]).toBe(1);
    expect(region.readQueueWait(a)).toMatchObject({ sumMicros: 70_000 });
    expect(count(region.readQueueWait(a))).toBe(1);
    expect(region.readQueueWait(b)).toMatchObject({ sumMicros: 3 });
    // Nothing leaks between the three histograms or into the handler's own latency.
    expect(count(region.readCallDuration(b))).toBe(0);
    expect(count(region.readKeyWait(a))).toBe(0);
    expect(region.readKeyWait(b)).toMatchObject({ sumMicros: 9, waiting: 0 });
    expect(region.handlerMetrics(a).executions).toBe(0);
    expect(region.readHistogram(a).every((n) => n === 0)).toBe(true);
    // Clamped like latencies.
    region.recordCallDuration(b, MAX_LATENCY_MICROS * 4);
    expect(region.readCallDuration(b).counts[OVERFLOW_BUCKET]).toBe(1);
  });

  it('reports the circuit state kept on the same buffer', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('Flaky');
    const breaker = new BreakerState(region.buffer, slot, { failureThreshold: 1 }, () => 0);
    const admission = breaker.tryAcquire();
    if (admission.admitted) breaker.onResult(admission.ticket, false);
    expect(region.snapshot().handlers.Flaky?.circuit).toBe('open');
  });

  it('refuses a stripe outside the region, and a buffer that is not a region', () => {
    const region = new MetricsRegion({ threadStripes: 1 });
    const slot = region.allocate('A');
    expect(() => region.record(slot, 2, 1, false)).toThrow(RangeError);
    expect(() => region.record(slot, -1, 1, false)).toThrow(RangeError);
    expect(() => region.record(region.maxHandlers, 0, 1, false)).toThrow(/slot/);
    expect(() => new MetricsView(new SharedArrayBuffer(1024))).toThrow(TypeError);
  });

  it('names the option that is out of range', () => {
    expect(() => new MetricsRegion({ threadStripes: 0 })).toThrow(/options\.threadStripes/);
    expect(() => new MetricsRegion({ maxHandlers: 1.5 })).toThrow(/options\.maxHandlers/);
    expect(() => new MetricsRegion({ initialHandlers: -1 })).toThrow(/options\.initialHandlers/);
  });
});
