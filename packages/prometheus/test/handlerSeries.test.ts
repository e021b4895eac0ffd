/**
 * Per-handler series that exist before anything happened (failure codes at 0, breaker transitions at 0),
 * and the transitions of a breaker counted through a whole closed → open → half-open → closed round with a
 * worker handler behind it. Runs against the built packages and fixtures (`node build.mjs --fast` first).
 */
import {
  CommandBus,
  circuitBreaker,
  defineCommand,
  defineQuery,
  inWorker,
  isCqrsError,
  QueryBus,
  rateLimit,
  retry,
  timeout,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Lookup, Work } from './fixtures/handlers.js';
import { parseExposition } from './scrape.js';

const handlers = new URL('../../../dist/packages/prometheus/test/fixtures/handlers.js', import.meta.url);

const Inline = defineQuery('Inline', { input: z.object({}) });
const Keyed = defineCommand('Keyed', { input: z.object({ id: z.string() }) });

let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('series present from the first scrape', () => {
  it('has a failure series at 0 for every code a chain can produce, and four transition series per breaker', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool, middleware: [validation()] });
    const queries = new QueryBus({ pool });
    commands.registerHandler(Work, inWorker(handlers, 'doWork'), {
      middleware: [rateLimit({ limit: 10, windowMs: 1_000 }), circuitBreaker(), timeout(1_000)],
    });
    commands.registerHandler(Keyed, () => undefined, { orderingKey: (input) => input.id });
    queries.registerHandler(Lookup, inWorker(handlers, 'lookup'), { middleware: [retry()] });
    queries.registerHandler(Inline, () => 'ok');
    const registry = new Registry();
    registerCqrsMetrics({ registry, buses: [commands, queries], pool });

    const m = parseExposition(await registry.metrics());
    const codes = (handler: string) =>
      m
        .all('cqrs_failures_total', { handler })
        .map((s) => {
          expect(s.value).toBe(0);
          return s.labels.code;
        })
        .sort();
    const pooled = ['ABORTED', 'HANDLER_FAILED', 'NOT_CLONEABLE', 'OVERLOADED', 'WORKER_CRASHED'];
    expect(codes('Work')).toEqual(
      [...pooled, 'CIRCUIT_OPEN', 'RATE_LIMITED', 'TIMEOUT', 'VALIDATION'].sort(),
    );
    expect(codes('Keyed')).toEqual(['ABORTED', 'HANDLER_FAILED', 'OVERLOADED', 'VALIDATION']);
    expect(codes('Lookup')).toEqual(pooled);
    expect(codes('Inline')).toEqual(['ABORTED', 'HANDLER_FAILED']);
    const transitions = m.all('cqrs_circuit_transitions_total');
    expect(transitions.map((s) => `${s.labels.handler}:${s.labels.from}->${s.labels.to}=${s.value}`)).toEqual(
      ['Work:closed->open=0', 'Work:open->half-open=0', 'Work:half-open->closed=0', 'Work:half-open->open=0'],
    );
    // Histograms of every handler are there too, empty; queue waits only for worker handlers.
    expect(m.value('cqrs_call_duration_seconds_count', { handler: 'Inline' })).toBe(0);
    expect(m.value('cqrs_queue_wait_seconds_count', { handler: 'Work' })).toBe(0);
    expect(m.all('cqrs_queue_wait_seconds_count', { handler: 'Inline' })).toEqual([]);
  });
});

describe('cqrs_circuit_transitions_total', () => {
  it('counts each transition of a round closed → open → half-open → closed, and a reopening', async () => {
    pool = new WorkerPool({ threads: 2 });
    let now = 0;
    const commands = new CommandBus({
      pool,
      middleware: [circuitBreaker({ failureThreshold: 3, resetAfterMs: 1_000, clock: () => now })],
    });
    commands.registerHandler(Work, inWorker(handlers, 'doWork'));
    const registry = new Registry();
    registerCqrsMetrics({ registry, buses: [commands], pool });
    const transitions = async () =>
      Object.fromEntries(
        parseExposition(await registry.metrics())
          .all('cqrs_circuit_transitions_total', { handler: 'Work' })
          .map((s) => [`${s.labels.from}->${s.labels.to}`, s.value]),
      );
    const fail = () => commands.execute(Work, { spinUs: 0, fail: true });
    const succeed = () => commands.execute(Work, { spinUs: 0, fail: false });

    // Three failures on the pool's threads open it; calls are refused while it is open.
    const outcomes = await Promise.allSettled([fail(), fail(), fail()]);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    await expect(succeed()).rejects.toSatisfy((err) => isCqrsError(err, 'CIRCUIT_OPEN'));
    expect(await transitions()).toEqual({
      'closed->open': 1,
      'open->half-open': 0,
      'half-open->closed': 0,
      'half-open->open': 0,
    });
    // After resetAfterMs a probe goes through: it fails, and the breaker opens again.
    now = 1_000;
    await expect(fail()).rejects.toSatisfy((err) => isCqrsError(err, 'HANDLER_FAILED'));
    // Then a successful probe closes it.
    now = 2_000;
    await succeed();
    await succeed();
    expect(await transitions()).toEqual({
      'closed->open': 1,
      'open->half-open': 2,
      'half-open->closed': 1,
      'half-open->open': 1,
    });
    expect(parseExposition(await registry.metrics()).value('cqrs_circuit_state', { handler: 'Work' })).toBe(
      0,
    );
  });
});
