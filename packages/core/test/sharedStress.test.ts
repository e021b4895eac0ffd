/**
 * The shared-memory primitives under real threads: exact counts, exactly N half-open probes, and the
 * limiter's rate — what an injected clock on one thread cannot show. Where a count depends on time, the
 * threads share a stepped clock (all at the same instant, step after step), so it depends on nothing but the
 * code; on the wall clock, only what no machine's speed can change is checked. Runs against the built
 * fixture (`node build.mjs --fast` first); the worker threads use plain `node:worker_threads`, not the pool.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { BreakerState } from '../src/shared/breakerState.js';
import { BUCKETS, bucketIndex } from '../src/shared/histogram.js';
import { MAIN_STRIPE } from '../src/shared/layout.js';
import { MetricsRegion } from '../src/shared/MetricsRegion.js';
import {
  arriveAndWait,
  Control,
  controlBuffer,
  failedAt,
  latencyOf,
  type StressData,
  TIMES_BYTE,
  TRIAL_WORDS,
  TRIALS_BYTE,
} from './fixtures/sharedStressProtocol.js';
import { runBreakerTrials, runLimiter, runLimiterSteps } from './fixtures/sharedStressScenarios.js';

const workerUrl = new URL('../../../dist/packages/core/test/fixtures/sharedStressWorker.js', import.meta.url);
const THREADS = 2;
const PARTIES = THREADS + 1;

type WorkerPart = StressData extends infer D
  ? D extends unknown
    ? Omit<D, 'party' | 'parties'>
    : never
  : never;

/**
 * Starts THREADS workers on `part`, runs the main thread's share (which meets them at barriers), then waits
 * for every worker to exit cleanly. A worker that fails makes the main thread's barrier time out; its own
 * error is reported in preference.
 */
async function withWorkers(part: WorkerPart, mainShare: () => void): Promise<void> {
  const errors: unknown[] = [];
  const workers = Array.from({ length: THREADS }, (_, i) => {
    const worker = new Worker(workerUrl, { workerData: { ...part, parties: PARTIES, party: i + 1 } });
    worker.on('error', (error) => errors.push(error));
    return worker;
  });
  const exits = workers.map((w) => new Promise<number>((resolve) => w.once('exit', resolve)));
  try {
    mainShare();
  } catch (error) {
    await new Promise((resolve) => setImmediate(resolve));
    throw errors[0] ?? error;
  } finally {
    const codes = await Promise.race([
      Promise.all(exits),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000).unref()),
    ]);
    if (codes === undefined) await Promise.all(workers.map((w) => w.terminate()));
  }
  if (errors.length > 0) throw errors[0];
}

function expectedHistogram(records: number, parties: number): number[] {
  const counts = new Array<number>(BUCKETS).fill(0);
  for (let i = 0; i < records; i++) {
    const bucket = bucketIndex(latencyOf(i));
    counts[bucket] = (counts[bucket] ?? 0) + parties;
  }
  return counts;
}

describe('shared memory under real threads', () => {
  const records = 100_000;
  let expectedFailures = 0;
  let expectedSum = 0;
  let expectedMax = 0;
  for (let i = 0; i < records; i++) {
    if (failedAt(i)) expectedFailures++;
    expectedSum += latencyOf(i);
    expectedMax = Math.max(expectedMax, latencyOf(i));
  }

  for (const threadStripes of [THREADS, 1]) {
    const how = threadStripes === 1 ? 'both threads on one shared stripe' : 'a stripe per thread';
    it(`counts exactly what the main thread and ${THREADS} threads record into one slot (${how})`, async () => {
      const region = new MetricsRegion({ threadStripes, initialHandlers: 1, maxHandlers: 64 });
      const slot = region.allocate('Hammered');
      const control = controlBuffer();
      const words = new Int32Array(control);
      let newSlot = slot;
      const seen: number[] = [];
      await withWorkers({ scenario: 'record', region: region.buffer, control, slot, records }, () => {
        arriveAndWait(words, PARTIES);
        for (let i = 0; i < records; i++) {
          region.record(slot, MAIN_STRIPE, latencyOf(i), failedAt(i));
          if (i % 10_000 === 0) {
            // Grow the region while the threads hammer it, and read it mid-flight.
            newSlot = region.allocate(`grown-${i}`);
            seen.push(region.handlerMetrics(slot).executions);
          }
        }
        Atomics.store(words, Control.newSlot, newSlot);
        arriveAndWait(words, PARTIES);
        for (let i = 0; i < records; i++) region.record(newSlot, MAIN_STRIPE, latencyOf(i), failedAt(i));
        arriveAndWait(words, PARTIES);
      });

      expect(region.buffer.byteLength).toBeGreaterThan(region.layout.bytesFor(8));
      const total = PARTIES * records;
      // Mid-run reads never went backwards nor past the end.
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen.every((n) => n <= total)).toBe(true);
      for (const name of ['Hammered', `grown-${records - 10_000}`]) {
        const figures = region.snapshot().handlers[name];
        expect(figures, name).toMatchObject({ executions: total, failures: PARTIES * expectedFailures });
        expect(figures?.latency.mean).toBeCloseTo(expectedSum / records / 1000, 9);
        expect(figures?.latency.max).toBe(expectedMax / 1000);
        expect(region.readHistogram(region.slotOf(name) ?? -1)).toEqual(expectedHistogram(records, PARTIES));
      }
      expect(region.snapshot().executions).toBe(2 * total);
    });
  }

  it(`admits exactly halfOpenProbes trial calls across ${PARTIES} threads, trial after trial, counting each transition once`, async () => {
    const trials = 200;
    const breaker = { failureThreshold: 2, resetAfterMs: 1_000, halfOpenProbes: 7 };
    const region = new MetricsRegion({
      threadStripes: THREADS,
      initialHandlers: trials,
      maxHandlers: trials,
    });
    for (let trial = 0; trial < trials; trial++) {
      const state = new BreakerState(region.buffer, region.allocate(`trial-${trial}`), breaker, () => 0);
      for (let i = 0; i < breaker.failureThreshold; i++) {
        const admission = state.tryAcquire();
        if (admission.admitted) state.onResult(admission.ticket, false);
      }
      expect(state.state()).toBe('open');
    }
    const control = controlBuffer(trials);
    // Every thread tries more often than there are probes, so they race for the last ones.
    const attempts = breaker.halfOpenProbes;
    await withWorkers(
      { scenario: 'breaker', region: region.buffer, control, trials, attempts, breaker },
      () => runBreakerTrials(region.buffer, new Int32Array(control), PARTIES, trials, attempts, breaker),
    );

    const words = new Int32Array(control, TRIALS_BYTE);
    const wrong: string[] = [];
    for (let trial = 0; trial < trials; trial++) {
      const [admitted, toHalfOpen, toClosed, toOpen] = Array.from(words.subarray(trial * TRIAL_WORDS));
      const closes = trial % 2 === 0;
      const state = new BreakerState(region.buffer, trial, breaker).state();
      // The transition counters beside the state: each transition counted once, by whichever thread won
      // it — the main thread's opening, then the threads' half-open and close or reopen.
      const counted = region.readTransitions(trial).join(',');
      const ok =
        admitted === breaker.halfOpenProbes &&
        toHalfOpen === 1 &&
        toClosed === (closes ? 1 : 0) &&
        toOpen === (closes ? 0 : 1) &&
        state === (closes ? 'closed' : 'open') &&
        counted === `1,1,${toClosed},${toOpen}`;
      if (!ok) {
        wrong.push(
          `trial ${trial}: ${admitted} admitted, ${toHalfOpen}/${toClosed}/${toOpen}, ${state}, counted ${counted}`,
        );
      }
    }
    expect(wrong).toEqual([]);
  });

  it(`admits exactly burst + rate × elapsed to ${PARTIES} threads racing at each instant of a stepped clock`, async () => {
    const limiter = { limit: 200, windowMs: 1_000, burst: 100 };
    const intervalMs = limiter.windowMs / limiter.limit;
    // 20 places freed per step, raced for by every thread at once.
    const steps = 40;
    const stepMs = 100;
    const region = new MetricsRegion({ threadStripes: THREADS });
    const slot = region.allocate('Limited');
    const control = controlBuffer();
    const words = new Int32Array(control);
    await withWorkers(
      { scenario: 'limiterSteps', region: region.buffer, control, slot, steps, stepMs, ...limiter },
      () => runLimiterSteps(region.buffer, words, PARTIES, steps, stepMs, slot, limiter),
    );
    expect(Atomics.load(words, Control.admitted)).toBe(limiter.burst + ((steps - 1) * stepMs) / intervalMs);
  });

  it(`never admits more than burst + rate × elapsed on the wall clock, ${PARTIES} threads calling as fast as they can`, async () => {
    const limiter = { limit: 200, windowMs: 1_000, burst: 100 };
    const intervalMs = limiter.windowMs / limiter.limit;
    const durationMs = 800;
    const region = new MetricsRegion({ threadStripes: THREADS });
    const slot = region.allocate('Limited');
    const control = controlBuffer();
    const words = new Int32Array(control);
    await withWorkers(
      { scenario: 'limiter', region: region.buffer, control, slot, durationMs, ...limiter },
      () => runLimiter(region.buffer, words, PARTIES, 0, slot, durationMs, limiter),
    );

    const times = new Float64Array(control, TIMES_BYTE, 2 * PARTIES);
    const firstAdmitted = Math.min(...Array.from({ length: PARTIES }, (_, p) => times[2 * p] ?? Number.NaN));
    const lastAttempt = Math.max(
      ...Array.from({ length: PARTIES }, (_, p) => times[2 * p + 1] ?? Number.NaN),
    );
    // Each thread reads its own wall clock: a thread whose clock ran ahead, or a lost compare-and-swap, would
    // admit more. A thread that was descheduled only admits fewer (how many is the machine's speed), so the
    // count is held to its upper bound here; the stepped run above holds it exactly.
    const admitted = Atomics.load(words, Control.admitted);
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(limiter.burst + (lastAttempt - firstAdmitted) / intervalMs + 1);
  });
});
