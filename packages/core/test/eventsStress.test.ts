/**
 * 10,000 publishes to 5 subscribers — inline and in threads, two of them retrying — failing at random: every
 * publish settles, its report names each subscriber once, every failure reaches `onFailure` exactly once,
 * and the metrics count every attempt, whichever thread ran it. The random plan is seeded; a failure names
 * its seed (`EVENTS_SEED=<n>` replays it).
 */
import type { EventFailure, PublishReport } from '@cqrs-pool/core';
import { inWorker, retry } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { closeEventBuses, eventBuses, eventHandlers } from './eventBuses.js';
import { Noted, note, noted, noteLog } from './fixtures/eventMessages.js';

afterEach(closeEventBuses);

const PUBLISHES = 10_000;
const SUBSCRIBERS = 5;
/** Publishes in flight at once: enough to keep both threads batched, not so many the queue fills. */
const LANES = 256;
/** Retries of each subscriber (0: none). s2 and s3 retry twice. */
const RETRIES = [0, 0, 2, 2, 0];

/** mulberry32: a small seeded generator, so a failing plan can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Plan {
  fail: string[];
  failAttempts: number;
  strategy: 'parallel' | 'sequential';
}

/** What subscriber `slot` does with publish `plan`: its attempts, how many failed, and whether it failed. */
function expected(plan: Plan, slot: number): { attempts: number; failedAttempts: number; failed: boolean } {
  const retries = RETRIES[slot] as number;
  if (plan.fail.includes(`s${slot}`) || plan.failAttempts > retries) {
    return { attempts: retries + 1, failedAttempts: retries + 1, failed: true };
  }
  return { attempts: plan.failAttempts + 1, failedAttempts: plan.failAttempts, failed: false };
}

describe('10,000 publishes, 5 subscribers, random failures', () => {
  it('settle with exact reports and counts, every failure reported exactly once', async () => {
    const seed = Number(process.env.EVENTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = generator(seed);
    const { events, deadLetters } = eventBuses({ threads: 2 });
    const retrying = retry({ maxRetries: 2, baseDelayMs: 0, maxDelayMs: 0 });
    events.subscribe(Noted, 's0', (event) => note(event, 's0', false));
    events.subscribe(Noted, 's1', inWorker(eventHandlers, 'noteInThread'));
    events.subscribe(Noted, 's2', (event) => note(event, 's2', false), { middleware: [retrying] });
    events.subscribe(Noted, 's3', inWorker(eventHandlers, 'noteInThread'), { middleware: [retrying] });
    events.subscribe(Noted, 's4', async (event) => {
      await Promise.resolve();
      await note(event, 's4', false);
    });
    await events.ready();

    const plans: Plan[] = Array.from({ length: PUBLISHES }, () => ({
      fail: Array.from({ length: SUBSCRIBERS }, (_, s) => `s${s}`).filter(() => random() < 0.1),
      failAttempts: random() < 0.2 ? 1 + Math.floor(random() * 3) : 0,
      strategy: random() < 0.3 ? 'sequential' : 'parallel',
    }));
    const log = noteLog(PUBLISHES, SUBSCRIBERS);
    const reports: PublishReport[] = new Array(PUBLISHES);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < PUBLISHES) {
        const seq = next++;
        const plan = plans[seq] as Plan;
        reports[seq] = await events.publish(
          Noted,
          { seq, log, subscribers: SUBSCRIBERS, fail: plan.fail, failAttempts: plan.failAttempts },
          { strategy: plan.strategy, metadata: { seq: String(seq) } },
        );
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));

    const where = `(seed ${seed})`;
    const executions = new Array<number>(SUBSCRIBERS).fill(0);
    const failures = new Array<number>(SUBSCRIBERS).fill(0);
    let failedTotal = 0;
    for (let seq = 0; seq < PUBLISHES; seq++) {
      const plan = plans[seq] as Plan;
      const report = reports[seq] as PublishReport;
      const wantDelivered: string[] = [];
      const wantFailed: string[] = [];
      for (let slot = 0; slot < SUBSCRIBERS; slot++) {
        const want = expected(plan, slot);
        executions[slot] = (executions[slot] as number) + want.attempts;
        failures[slot] = (failures[slot] as number) + want.failedAttempts;
        (want.failed ? wantFailed : wantDelivered).push(`s${slot}`);
        const seen = noted(log, seq, SUBSCRIBERS, slot);
        if (seen.attempts !== want.attempts) {
          throw new Error(
            `publish ${seq} s${slot}: ${seen.attempts} attempts, expected ${want.attempts} ${where}`,
          );
        }
      }
      expect(report.delivered, `publish ${seq} ${where}`).toEqual(wantDelivered);
      expect(
        report.failed.map((f) => f.subscriber),
        `publish ${seq} ${where}`,
      ).toEqual(wantFailed);
      failedTotal += wantFailed.length;
    }

    // onFailure: once per failed (publish, subscriber), with the very error the report holds.
    expect(deadLetters.length, where).toBe(failedTotal);
    const byKey = new Map<string, EventFailure>();
    for (const failure of deadLetters) {
      const key = `${failure.metadata.seq}:${failure.subscriber}`;
      expect(byKey.has(key), `${key} reported twice ${where}`).toBe(false);
      byKey.set(key, failure);
    }
    for (let seq = 0; seq < PUBLISHES; seq++) {
      for (const { subscriber, error } of (reports[seq] as PublishReport).failed) {
        expect(byKey.get(`${seq}:${subscriber}`)?.error, where).toBe(error);
      }
    }

    const metrics = events.getMetrics();
    for (let slot = 0; slot < SUBSCRIBERS; slot++) {
      expect(metrics.handlers[`Noted:s${slot}`], `s${slot} ${where}`).toMatchObject({
        executions: executions[slot],
        failures: failures[slot],
        inFlight: 0,
      });
    }
    expect(events.pending).toBe(0);
  }, 120_000);
});
