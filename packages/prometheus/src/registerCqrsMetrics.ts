import type { WorkerPool } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import { register as globalRegistry } from 'prom-client';
import { registerHandlerSeries } from './handlerSeries.js';
import { DEFAULT_LATENCY_BUCKETS, latencyBuckets } from './latencyBuckets.js';
import { type AnyRegistry, MetricSet } from './MetricSet.js';
import { registerPoolSeries } from './poolSeries.js';
import {
  type EventLoopDelaySettings,
  registerEventLoopDelay,
  registerProcessMetrics,
} from './runtimeSeries.js';
import { type MetricsBus, ScrapeReader } from './ScrapeReader.js';

/** Options of {@link registerCqrsMetrics}. */
export interface CqrsMetricsOptions {
  /** Where the metrics are registered (Prometheus or OpenMetrics format); default prom-client's global `register`. */
  registry?: AnyRegistry;
  /** The buses whose handlers are exported (each handler once, labelled with its kind). */
  buses: readonly MetricsBus[];
  /** The pool whose series are exported (`<prefix>pool_*`); none without it. */
  pool?: WorkerPool;
  /** Prepended to every metric name; default `'cqrs_'`. */
  prefix?: string;
  /**
   * `le` bounds of every histogram (`latency_seconds`, `call_duration_seconds`, `queue_wait_seconds`,
   * `key_wait_seconds`), in seconds; default one per power of two from 1 µs to 67 s
   * (`DEFAULT_LATENCY_BUCKETS`: quantiles within a factor of 2); `FINE_LATENCY_BUCKETS` has all four per power
   * of two (within 25 %). Each bound is raised to the next bound of the shared histogram, so every count is
   * exact.
   */
  latencyBuckets?: readonly number[];
  /**
   * prom-client's default process and runtime metrics (`collectDefaultMetrics`: `process_cpu_seconds_total`,
   * `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, `nodejs_gc_duration_seconds`, …) in the
   * same registry: `true`, or `{ prefix }` to put a prefix before their names (default none). Default off.
   * prom-client keeps its GC observer and event-loop monitor running after the unregister function removed
   * the metrics.
   */
  processMetrics?: boolean | { prefix?: string };
  /**
   * `<prefix>event_loop_delay_seconds`: the main thread's event-loop delay (`monitorEventLoopDelay`), a
   * summary whose quantiles are over the interval since the previous scrape: `true` (a sample every 10 ms),
   * or `{ resolutionMs }`. Default off. The monitor stops when the metrics are unregistered.
   */
  eventLoopDelay?: boolean | { resolutionMs?: number };
}

/**
 * Registers Prometheus metrics that read the buses' and the pool's shared-memory figures when scraped:
 * figures summed over every thread, and no cost per call beyond the recording the buses do anyway. Returns a
 * function that removes them from the registry again.
 *
 * Series (names with the default prefix; per handler, labels `handler` and `kind`):
 * - `cqrs_executions_total` — counter of calls settled (every attempt of a retry; a call refused before its
 *   handler ran — validation, breaker, limiter, overload, abort — is an execution and a failure).
 * - `cqrs_failures_total{code}` — counter of failures by the error code the caller got. A series exists at 0
 *   from the start for every code the handler's chain can produce (`HANDLER_FAILED`, `ABORTED`; `TIMEOUT`,
 *   `CIRCUIT_OPEN`, `RATE_LIMITED`, `VALIDATION` from those middleware; `WORKER_CRASHED`, `NOT_CLONEABLE`,
 *   `OVERLOADED` for worker handlers); any other code (`UNKNOWN` for a custom middleware's plain error)
 *   appears with its first failure. Codes are counted on the main thread as failures settle, so while a
 *   pool thread's failure is on its way back the sum over codes can trail the executions by the calls in
 *   transit.
 * - `cqrs_in_flight` — gauge, calls started and not settled.
 * - `cqrs_latency_seconds` — histogram of the handlers' run time where they ran (refusals have none; inline
 *   handlers are timed on every call of their first 1024, then one call in 32).
 * - `cqrs_call_duration_seconds` — histogram of what callers waited, execute to settled: queue and key
 *   waits, middleware, retries and refusals included (inline handlers' calls sampled as above).
 * - `cqrs_queue_wait_seconds` — histogram, worker handlers: from the call's hand-over to the pool to its
 *   handler's start in a thread (waiting for a thread, and for the calls before it in its batch).
 * - `cqrs_circuit_state` — gauge, 0 closed, 1 half-open, 2 open (`CIRCUIT_STATE_VALUES`); and
 *   `cqrs_circuit_transitions_total{from,to}` — counter of transitions, handlers with a breaker: four
 *   series, at 0 from the start.
 * - `cqrs_key_waiting` and `cqrs_key_wait_seconds` — gauge of calls waiting for their ordering key, and
 *   histogram of how long calls waited for it: handlers registered with `orderingKey`.
 * - with `pool`: `cqrs_pool_busy_seconds_total` (counter: thread-seconds busy; `rate()` over
 *   `cqrs_pool_threads` is the busy fraction), gauges `cqrs_pool_threads`, `cqrs_pool_queue_size`,
 *   `cqrs_pool_max_queue`, `cqrs_pool_in_flight`.
 * - opt-in: prom-client's default metrics (`processMetrics`), `cqrs_event_loop_delay_seconds` (`eventLoopDelay`).
 *
 * Handlers registered after this call are exported too (the buses are read at each scrape).
 * @throws CqrsError `INVALID_REGISTRATION` for a bad option (the message names it). prom-client throws when
 * a metric of the same name is already in the registry (register again with another `prefix`); the registry
 * is then left as it was.
 */
export function registerCqrsMetrics(options: CqrsMetricsOptions): () => void {
  const { registry = globalRegistry, pool, prefix = 'cqrs_' } = options;
  const buses = checkBuses(options.buses);
  checkPrefix('prefix', prefix);
  if (pool !== undefined && (typeof pool !== 'object' || pool === null || !('queueSize' in pool))) {
    throw new CqrsError('INVALID_REGISTRATION', 'registerCqrsMetrics: options.pool must be a WorkerPool');
  }
  const buckets = latencyBuckets(options.latencyBuckets ?? DEFAULT_LATENCY_BUCKETS);
  const processPrefix = processMetricsPrefix(options.processMetrics);
  const eventLoop = eventLoopDelaySettings(options.eventLoopDelay);
  const reader = new ScrapeReader(buses, pool);
  const set = new MetricSet(registry, prefix);
  try {
    registerHandlerSeries(set, reader, buckets);
    if (pool !== undefined) registerPoolSeries(set, reader);
    if (eventLoop !== undefined) registerEventLoopDelay(set, eventLoop);
    if (processPrefix !== undefined) registerProcessMetrics(set, processPrefix);
  } catch (err) {
    // A name already taken: leave the registry as it was.
    set.remove();
    throw err;
  }
  return () => set.remove();
}

function checkPrefix(option: string, prefix: unknown): void {
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `registerCqrsMetrics: options.${option} must be a Prometheus metric name prefix, got ${String(prefix)}`,
    );
  }
}

function processMetricsPrefix(option: CqrsMetricsOptions['processMetrics']): string | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return '';
  if (typeof option !== 'object' || option === null) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'registerCqrsMetrics: options.processMetrics must be a boolean or { prefix? }',
    );
  }
  const prefix = option.prefix ?? '';
  checkPrefix('processMetrics.prefix', prefix);
  return prefix;
}

function eventLoopDelaySettings(
  option: CqrsMetricsOptions['eventLoopDelay'],
): EventLoopDelaySettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return { resolutionMs: 10 };
  const resolutionMs =
    typeof option === 'object' && option !== null ? (option.resolutionMs ?? 10) : Number.NaN;
  if (!(Number.isInteger(resolutionMs) && resolutionMs >= 1 && resolutionMs <= 60_000)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'registerCqrsMetrics: options.eventLoopDelay must be a boolean or { resolutionMs } with an integer from 1 to 60000',
    );
  }
  return { resolutionMs };
}

function checkBuses(buses: unknown): MetricsBus[] {
  if (
    !Array.isArray(buses) ||
    buses.some((b) => typeof b !== 'object' || b === null || typeof b.metricsSources !== 'function')
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'registerCqrsMetrics: options.buses must be an array of CommandBus, QueryBus and EventBus',
    );
  }
  // The same bus twice would count its handlers twice.
  return [...new Set(buses as MetricsBus[])];
}
