/**
 * `registerCqrsMetrics` end to end: a pool and both buses with inline and worker handlers, a real `/metrics`
 * endpoint on loopback scraped with fetch, the text exposition parsed and checked series by series. Runs
 * against the built packages and fixtures (`node build.mjs --fast` first).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CommandBus,
  circuitBreaker,
  defineCommand,
  defineQuery,
  type ErrorCode,
  EventBus,
  inWorker,
  isCqrsError,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import { type OpenMetricsContentType, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Lookup, Noticed, Work } from './fixtures/handlers.js';
import { type Exposition, parseExposition } from './scrape.js';

const handlers = new URL('../../../dist/packages/prometheus/test/fixtures/handlers.js', import.meta.url);

/** Inline command: answers at once. */
const Touch = defineCommand('Touch', { input: z.object({ n: z.number() }), output: z.number() });
/** Inline query that always throws, behind a breaker that opens after two failures. */
const Flaky = defineQuery('Flaky', { input: z.object({}) });
/** Inline query that waits for the test to open its gate. */
const Slow = defineQuery('Slow', { input: z.object({}), output: z.string() });

let pool: WorkerPool;
let commands: CommandBus;
let queries: QueryBus;
let registry: Registry;
let unregister: () => void;
let server: Server;
let url: string;
let openGate = (): void => {};
const gate = new Promise<void>((resolve) => {
  openGate = resolve;
});

beforeAll(async () => {
  pool = new WorkerPool({ threads: 2 });
  commands = new CommandBus({ pool });
  queries = new QueryBus({ pool });
  commands.registerHandler(Work, inWorker(handlers, 'doWork'));
  commands.registerHandler(Touch, (input) => input.n);
  queries.registerHandler(Lookup, inWorker(handlers, 'lookup'));
  queries.registerHandler(
    Flaky,
    () => {
      throw new Error('down');
    },
    { middleware: [circuitBreaker({ failureThreshold: 2, resetAfterMs: 600_000 })] },
  );
  queries.registerHandler(Slow, async () => {
    await gate;
    return 'late';
  });
  await Promise.all([commands.ready(), queries.ready()]);
  registry = new Registry();
  unregister = registerCqrsMetrics({ registry, buses: [commands, queries], pool });
  server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
});

afterAll(async () => {
  openGate();
  await new Promise((resolve) => server?.close(resolve));
  await Promise.all([commands?.close(), queries?.close()]);
  await pool?.close();
});

async function scrape(): Promise<Exposition> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
  return parseExposition(await response.text());
}

/** Runs `times` calls of `call`, each expected to fail with `code` when given; resolves when all settled. */
async function calls(times: number, call: () => Promise<unknown>, code?: ErrorCode): Promise<void> {
  const outcomes = await Promise.allSettled(Array.from({ length: times }, call));
  for (const outcome of outcomes) {
    if (code === undefined) expect(outcome.status).toBe('fulfilled');
    else expect(outcome.status === 'rejected' && isCqrsError(outcome.reason, code)).toBe(true);
  }
}

const work = (fail: boolean) => () => commands.execute(Work, { spinUs: 2000, fail });
const lookup = () => queries.execute(Lookup, { spinUs: 0, fail: false });
const touch = () => commands.execute(Touch, { n: 1 });
const flaky = () => queries.execute(Flaky, {});

const at = (handler: string, kind: string) => ({ handler, kind });

describe('registerCqrsMetrics on a /metrics endpoint', () => {
  it('exports per-handler counters, latency histograms, circuit and in-flight gauges, and the pool gauges', async () => {
    await calls(4, work(false));
    await calls(2, work(true), 'HANDLER_FAILED');
    await calls(5, touch);
    await calls(3, lookup);
    // Two failures open the breaker; the third call is refused without running (counted, not timed).
    for (let i = 0; i < 2; i++) await calls(1, flaky, 'HANDLER_FAILED');
    await calls(1, flaky, 'CIRCUIT_OPEN');
    const slow = queries.execute(Slow, {});

    const m = await scrape();
    expect(Object.fromEntries([...m.types].filter(([name]) => name.startsWith('cqrs_')))).toEqual({
      cqrs_executions_total: 'counter',
      cqrs_failures_total: 'counter',
      cqrs_in_flight: 'gauge',
      cqrs_circuit_state: 'gauge',
      cqrs_circuit_transitions_total: 'counter',
      cqrs_latency_seconds: 'histogram',
      cqrs_call_duration_seconds: 'histogram',
      cqrs_queue_wait_seconds: 'histogram',
      cqrs_key_waiting: 'gauge',
      cqrs_key_wait_seconds: 'histogram',
      cqrs_pool_threads: 'gauge',
      cqrs_pool_queue_size: 'gauge',
      cqrs_pool_max_queue: 'gauge',
      cqrs_pool_in_flight: 'gauge',
      cqrs_pool_busy_seconds_total: 'counter',
    });
    const series = m.all('cqrs_executions_total').map((s) => `${s.labels.kind}:${s.labels.handler}`);
    expect(series.sort()).toEqual([
      'command:Touch',
      'command:Work',
      'query:Flaky',
      'query:Lookup',
      'query:Slow',
    ]);

    expect(m.value('cqrs_executions_total', at('Work', 'command'))).toBe(6);
    expect(m.value('cqrs_executions_total', at('Touch', 'command'))).toBe(5);
    expect(m.value('cqrs_executions_total', at('Lookup', 'query'))).toBe(3);
    expect(m.value('cqrs_executions_total', at('Flaky', 'query'))).toBe(3);
    // Failures by the code each caller got; the codes a chain can produce are there at 0 until they occur.
    const failures = m
      .all('cqrs_failures_total')
      .filter((s) => s.value > 0)
      .map((s) => `${s.labels.kind}:${s.labels.handler}:${s.labels.code}=${s.value}`);
    expect(failures.sort()).toEqual([
      'command:Work:HANDLER_FAILED=2',
      'query:Flaky:CIRCUIT_OPEN=1',
      'query:Flaky:HANDLER_FAILED=2',
    ]);
    const codesOf = (handler: string) =>
      m
        .all('cqrs_failures_total', { handler })
        .map((s) => s.labels.code)
        .sort();
    const pooled = ['ABORTED', 'HANDLER_FAILED', 'NOT_CLONEABLE', 'OVERLOADED', 'WORKER_CRASHED'];
    expect(codesOf('Work')).toEqual(pooled);
    expect(codesOf('Lookup')).toEqual(pooled);
    expect(codesOf('Touch')).toEqual(['ABORTED', 'HANDLER_FAILED']);
    expect(codesOf('Flaky')).toEqual(['ABORTED', 'CIRCUIT_OPEN', 'HANDLER_FAILED']);

    // Worker calls are timed where they ran, each one; the refused Flaky call has no latency.
    expect(m.value('cqrs_latency_seconds_count', at('Work', 'command'))).toBe(6);
    expect(m.value('cqrs_latency_seconds_count', at('Touch', 'command'))).toBe(5);
    expect(m.value('cqrs_latency_seconds_count', at('Lookup', 'query'))).toBe(3);
    expect(m.value('cqrs_latency_seconds_count', at('Flaky', 'query'))).toBe(2);
    for (const [handler, kind] of [
      ['Work', 'command'],
      ['Touch', 'command'],
      ['Lookup', 'query'],
      ['Flaky', 'query'],
    ] as const) {
      const buckets = m.all('cqrs_latency_seconds_bucket', at(handler, kind));
      expect(buckets.length).toBe(28);
      const le = buckets.map((b) =>
        b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le),
      );
      expect(le).toEqual([...le].sort((a, b) => a - b));
      expect(le.at(-1)).toBe(Number.POSITIVE_INFINITY);
      const counts = buckets.map((b) => b.value);
      for (let i = 1; i < counts.length; i++)
        expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1] as number);
      expect(counts.at(-1)).toBe(m.value('cqrs_latency_seconds_count', at(handler, kind)));
    }
    // Work spins 2 ms: nothing below 1.024 ms, everything below 67 s, a sum of at least 6 × 2 ms.
    expect(m.value('cqrs_latency_seconds_bucket', { ...at('Work', 'command'), le: '0.001024' })).toBe(0);
    expect(m.value('cqrs_latency_seconds_bucket', { ...at('Work', 'command'), le: '67.108864' })).toBe(6);
    const workSum = m.value('cqrs_latency_seconds_sum', at('Work', 'command'));
    expect(workSum).toBeGreaterThanOrEqual(6 * 0.002);
    // In seconds: the sum of the core's own figures (ms) over a thousand, whatever the machine took.
    const coreMeanMs = commands.getMetrics().handlers.Work?.latency.mean ?? Number.NaN;
    expect(workSum).toBeCloseTo((coreMeanMs * 6) / 1000, 6);

    // What callers waited: every settled call, refusals included (the refused Flaky call too).
    expect(m.value('cqrs_call_duration_seconds_count', at('Work', 'command'))).toBe(6);
    expect(m.value('cqrs_call_duration_seconds_count', at('Touch', 'command'))).toBe(5);
    expect(m.value('cqrs_call_duration_seconds_count', at('Flaky', 'query'))).toBe(3);
    expect(m.value('cqrs_call_duration_seconds_count', at('Slow', 'query'))).toBe(0);
    // A call's duration contains its handler's run (both rounded to the µs, hence the 1 µs a call).
    expect(m.value('cqrs_call_duration_seconds_sum', at('Work', 'command'))).toBeGreaterThanOrEqual(
      workSum - 6e-6,
    );
    // Queue waits: worker handlers only, one per call that started in a thread.
    expect(m.value('cqrs_queue_wait_seconds_count', at('Work', 'command'))).toBe(6);
    expect(m.value('cqrs_queue_wait_seconds_count', at('Lookup', 'query'))).toBe(3);
    expect(m.all('cqrs_queue_wait_seconds_count', at('Touch', 'command'))).toEqual([]);
    // The breaker's transitions: Flaky's opened once; no series for handlers without a breaker.
    const transitions = m
      .all('cqrs_circuit_transitions_total')
      .map((s) => `${s.labels.handler}:${s.labels.from}->${s.labels.to}=${s.value}`);
    expect(transitions.sort()).toEqual([
      'Flaky:closed->open=1',
      'Flaky:half-open->closed=0',
      'Flaky:half-open->open=0',
      'Flaky:open->half-open=0',
    ]);

    expect(m.value('cqrs_circuit_state', at('Flaky', 'query'))).toBe(2);
    expect(m.value('cqrs_circuit_state', at('Work', 'command'))).toBe(0);
    expect(m.value('cqrs_in_flight', at('Slow', 'query'))).toBe(1);
    expect(m.value('cqrs_in_flight', at('Work', 'command'))).toBe(0);

    expect(m.value('cqrs_pool_threads')).toBe(2);
    expect(m.value('cqrs_pool_queue_size')).toBe(0);
    expect(m.value('cqrs_pool_max_queue')).toBe(10_000);
    expect(m.value('cqrs_pool_in_flight')).toBe(0);
    // Six Work calls spun 2 ms each on a thread: at least that much thread time was busy.
    expect(m.value('cqrs_pool_busy_seconds_total')).toBeGreaterThanOrEqual(6 * 0.002);

    openGate();
    await expect(slow).resolves.toBe('late');
    const after = await scrape();
    expect(after.value('cqrs_in_flight', at('Slow', 'query'))).toBe(0);
    expect(after.value('cqrs_executions_total', at('Slow', 'query'))).toBe(1);
  });

  it('moves the counters by exactly the calls made between two scrapes', async () => {
    const before = await scrape();
    await calls(3, work(false));
    await calls(1, work(true), 'HANDLER_FAILED');
    await calls(7, touch);
    await calls(2, flaky, 'CIRCUIT_OPEN');
    const after = await scrape();
    const delta = (name: string, handler: string, kind: string) =>
      after.sum(name, at(handler, kind)) - before.sum(name, at(handler, kind));
    expect(delta('cqrs_executions_total', 'Work', 'command')).toBe(4);
    expect(delta('cqrs_failures_total', 'Work', 'command')).toBe(1);
    expect(delta('cqrs_latency_seconds_count', 'Work', 'command')).toBe(4);
    expect(delta('cqrs_executions_total', 'Touch', 'command')).toBe(7);
    expect(delta('cqrs_failures_total', 'Touch', 'command')).toBe(0);
    expect(delta('cqrs_latency_seconds_count', 'Touch', 'command')).toBe(7);
    expect(delta('cqrs_executions_total', 'Flaky', 'query')).toBe(2);
    expect(delta('cqrs_failures_total', 'Flaky', 'query')).toBe(2);
    expect(delta('cqrs_latency_seconds_count', 'Flaky', 'query')).toBe(0);
    expect(delta('cqrs_executions_total', 'Lookup', 'query')).toBe(0);
    expect(after.value('cqrs_latency_seconds_sum', at('Work', 'command'))).toBeGreaterThan(
      before.value('cqrs_latency_seconds_sum', at('Work', 'command')) + 4 * 0.002 - 1e-9,
    );
  });

  it('exports handlers registered after it, and renders OpenMetrics counters too', async () => {
    const Late = defineCommand('Late', { input: z.object({}) });
    commands.registerHandler(Late, () => undefined);
    await commands.execute(Late, {});
    expect((await scrape()).value('cqrs_executions_total', at('Late', 'command'))).toBe(1);

    const open = new Registry<OpenMetricsContentType>();
    open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const remove = registerCqrsMetrics({ registry: open, buses: [commands] });
    const text = await open.metrics();
    expect(text).toContain('# TYPE cqrs_executions counter');
    expect(text).toContain('cqrs_executions_total{handler="Late",kind="command"} 1');
    remove();
  });

  it('unregisters its metrics, and refuses a taken name without touching the registry', async () => {
    expect(() => registerCqrsMetrics({ registry, buses: [queries] })).toThrow(/already been registered/);
    expect(registry.getMetricsAsArray()).toHaveLength(14);
    const remove = registerCqrsMetrics({ registry, buses: [queries], prefix: 'other_' });
    expect((await scrape()).value('other_executions_total', at('Lookup', 'query'))).toBe(3);
    remove();
    const m = await scrape();
    expect(m.all('other_executions_total')).toHaveLength(0);
    expect(() => registerCqrsMetrics({ registry, buses: [commands], prefix: 'bad-' })).toThrow(
      /options.prefix/,
    );
    expect(() => registerCqrsMetrics({ registry, buses: 'no' as never })).toThrow(/options.buses/);
    unregister();
    expect(registry.getMetricsAsArray()).toHaveLength(0);
    expect((await scrape()).samples).toHaveLength(0);
  });
});

describe('event subscribers', () => {
  it('are exported with handler=<event>, kind="event" and a subscriber label; handlers carry none', async () => {
    const events = new EventBus({ pool });
    events.subscribe(Noticed, 'read-model', () => {});
    events.subscribe(Noticed, 'indexer', inWorker(handlers, 'notice'));
    events.subscribe(Noticed, 'mailer', () => {
      throw new Error('smtp down');
    });
    const own = new Registry();
    const remove = registerCqrsMetrics({ registry: own, buses: [commands, events], pool });
    try {
      for (let i = 0; i < 3; i++) await events.publish(Noticed, { spinUs: 100, fail: i === 0 });
      await calls(2, touch);
      const m = parseExposition(await own.metrics());
      const sub = (subscriber: string) => ({ handler: 'Noticed', kind: 'event', subscriber });
      expect(m.value('cqrs_executions_total', sub('read-model'))).toBe(3);
      expect(m.value('cqrs_executions_total', sub('indexer'))).toBe(3);
      expect(m.value('cqrs_executions_total', sub('mailer'))).toBe(3);
      expect(m.value('cqrs_failures_total', { ...sub('indexer'), code: 'HANDLER_FAILED' })).toBe(1);
      expect(m.value('cqrs_failures_total', { ...sub('mailer'), code: 'HANDLER_FAILED' })).toBe(3);
      // No failure: the series its chain can produce are there, at 0.
      const readModelFailures = m.all('cqrs_failures_total', sub('read-model'));
      expect(readModelFailures.map((s) => s.labels.code).sort()).toEqual(['ABORTED', 'HANDLER_FAILED']);
      expect(readModelFailures.every((s) => s.value === 0)).toBe(true);
      expect(m.value('cqrs_latency_seconds_count', sub('indexer'))).toBe(3);
      expect(m.all('cqrs_latency_seconds_bucket', sub('indexer'))).toHaveLength(28);
      expect(m.value('cqrs_in_flight', sub('indexer'))).toBe(0);
      expect(m.value('cqrs_circuit_state', sub('mailer'))).toBe(0);
      // A command's series has no subscriber label at all.
      const touchSeries = m.all('cqrs_executions_total', at('Touch', 'command'));
      expect(touchSeries).toHaveLength(1);
      expect(touchSeries[0]?.labels).toEqual({ handler: 'Touch', kind: 'command' });
      expect(await own.metrics()).toContain(
        'cqrs_executions_total{handler="Noticed",kind="event",subscriber="read-model"} 3',
      );
    } finally {
      remove();
      await events.close();
    }
  });
});
