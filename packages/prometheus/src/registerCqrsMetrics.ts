import type { WorkerPool } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import {
  Counter,
  Gauge,
  register as globalRegistry,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { labelsOf } from './labelsOf.js';
import { DEFAULT_LATENCY_BUCKETS, latencyBuckets } from './latencyBuckets.js';
import { type HandlerFigures, type MetricsBus, type PoolFigures, ScrapeReader } from './ScrapeReader.js';
import { SharedLatencyHistogram } from './SharedLatencyHistogram.js';

/** Options of {@link registerCqrsMetrics}. */
export interface CqrsMetricsOptions {
  /** Where the metrics are registered (Prometheus or OpenMetrics format); default prom-client's global `register`. */
  registry?: Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;
  /**
   * The buses whose handlers are exported (each handler once, labelled with its kind): command and query
   * buses, and event buses, whose subscribers are labelled `handler=<event>`, `kind="event"`,
   * `subscriber=<name>`.
   */
  buses: readonly MetricsBus[];
  /** The pool whose gauges are exported (`<prefix>pool_*`); none without it. */
  pool?: WorkerPool;
  /** Prepended to every metric name; default `'cqrs_'`. */
  prefix?: string;
  /**
   * `le` bounds of `<prefix>latency_seconds`, in seconds; default one per power of two from 1 µs to 67 s
   * (`DEFAULT_LATENCY_BUCKETS`). Each is raised to the next bound of the shared histogram (four per power
   * of two), so every count is exact.
   */
  latencyBuckets?: readonly number[];
}

/** Circuit states as numbers in `<prefix>circuit_state`. */
export const CIRCUIT_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;

// `subscriber` is set on event subscribers' series only (a label left out is an empty label to Prometheus).
const labelNames = ['handler', 'kind', 'subscriber'] as const;
type Label = (typeof labelNames)[number];

/**
 * Registers Prometheus metrics that read the buses' and the pool's shared-memory figures when scraped: no
 * cost per call, and figures summed over every thread. Returns a function that removes them from the
 * registry again.
 *
 * Series (names with the default prefix):
 * Every handler series is labelled `{handler,kind}`; an event subscriber's `{handler=<event>,kind="event",
 * subscriber=<name>}`.
 * - `cqrs_executions_total{handler,kind}` — counter; a call refused before its handler ran (validation,
 *   breaker, limiter, overload, abort) is an execution and a failure.
 * - `cqrs_failures_total{handler,kind,code}` — counter of failures by the error code the caller got
 *   (`HANDLER_FAILED`, `TIMEOUT`, `CIRCUIT_OPEN`…; `UNKNOWN` for a custom middleware's plain error). A
 *   series appears with its code's first failure. Codes are counted on the main thread as failures settle
 *   there, so while a pool thread's failure is on its way back the sum over codes can trail the failures in
 *   `getMetrics()` by the calls in transit.
 * - `cqrs_in_flight{handler,kind}` — gauge, calls started and not settled.
 * - `cqrs_latency_seconds{handler,kind}` — histogram of the timed calls (refusals have no latency; inline
 *   handlers are timed on every call of their first 1024, then one call in 8), so `_count` may be below
 *   `cqrs_executions_total`; `_sum / _count` is their mean.
 * - `cqrs_circuit_state{handler,kind}` — gauge, 0 closed, 1 half-open, 2 open (`CIRCUIT_STATE_VALUES`).
 * - `cqrs_key_waiting{handler,kind}` — gauge, calls waiting for their ordering key; and
 *   `cqrs_key_wait_seconds{handler,kind}` — histogram of how long calls waited for their key (0 for a call
 *   that had it at once): handlers registered with `orderingKey` only.
 * - `cqrs_pool_threads`, `cqrs_pool_queue_size`, `cqrs_pool_max_queue`, `cqrs_pool_utilization`,
 *   `cqrs_pool_in_flight` — gauges, with `pool` only.
 *
 * Handlers registered after this call are exported too (the buses are read at each scrape).
 * @throws CqrsError `INVALID_REGISTRATION` for a bad option (the message names it). prom-client throws when
 * a metric of the same name is already in the registry (register again with another `prefix`).
 */
export function registerCqrsMetrics(options: CqrsMetricsOptions): () => void {
  const { registry = globalRegistry, pool, prefix = 'cqrs_' } = options;
  const buses = checkBuses(options.buses);
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `registerCqrsMetrics: options.prefix must be a Prometheus metric name prefix, got ${String(prefix)}`,
    );
  }
  if (pool !== undefined && (typeof pool !== 'object' || pool === null || !('queueSize' in pool))) {
    throw new CqrsError('INVALID_REGISTRATION', 'registerCqrsMetrics: options.pool must be a WorkerPool');
  }
  const buckets = latencyBuckets(options.latencyBuckets ?? DEFAULT_LATENCY_BUCKETS);
  const reader = new ScrapeReader(buses, pool);
  const registers = [registry];
  const names: string[] = [];
  const remove = (): void => {
    for (const name of names.splice(0)) registry.removeSingleMetric(name);
  };

  // prom-client calls `collect` at each scrape; a counter can only grow by `inc`, so it is emptied and
  // increased to the shared count — the exposition still types it `counter`.
  const perHandler = (
    Metric: typeof Counter | typeof Gauge,
    suffix: string,
    help: string,
    value: (figures: HandlerFigures) => number,
  ): void => {
    const name = `${prefix}${suffix}`;
    const collect = function (this: Counter<Label> | Gauge<Label>): void {
      this.reset();
      for (const figures of reader.read().handlers) {
        const labels = labelsOf(figures);
        if (this instanceof Gauge) this.set(labels, value(figures));
        else this.inc(labels, value(figures));
      }
    };
    new Metric({ name, help, labelNames, registers, collect });
    names.push(name);
  };
  const poolGauge = (suffix: string, help: string, value: (figures: PoolFigures) => number): void => {
    const name = `${prefix}${suffix}`;
    new Gauge({
      name,
      help,
      registers,
      collect(): void {
        const figures = reader.read().pool;
        if (figures !== undefined) this.set(value(figures));
      },
    });
    names.push(name);
  };

  try {
    perHandler(Counter, 'executions_total', 'Handler calls settled, refusals included', (f) => f.executions);
    const failuresName = `${prefix}failures_total`;
    new Counter({
      name: failuresName,
      help: 'Handler calls that failed, refusals included, by error code',
      labelNames: [...labelNames, 'code'],
      registers,
      collect(): void {
        this.reset();
        for (const figures of reader.read().handlers) {
          for (const [code, count] of Object.entries(figures.failuresByCode)) {
            this.inc({ ...labelsOf(figures), code }, count);
          }
        }
      },
    });
    names.push(failuresName);
    perHandler(Gauge, 'in_flight', 'Handler calls started and not yet settled', (f) => f.inFlight);
    perHandler(
      Gauge,
      'circuit_state',
      'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      (f) => CIRCUIT_STATE_VALUES[f.circuit],
    );
    const latencyName = `${prefix}latency_seconds`;
    new SharedLatencyHistogram(
      { name: latencyName, help: 'Latency of timed handler calls, seconds', labelNames, registers },
      reader,
      buckets,
    );
    names.push(latencyName);
    const keyWaitingName = `${prefix}key_waiting`;
    new Gauge({
      name: keyWaitingName,
      help: 'Calls waiting for their ordering key (handlers with orderingKey)',
      labelNames,
      registers,
      collect(): void {
        this.reset();
        for (const figures of reader.read().handlers) {
          if (figures.keyWait !== undefined) {
            this.set(labelsOf(figures), figures.keyWait.waiting);
          }
        }
      },
    });
    names.push(keyWaitingName);
    const keyWaitName = `${prefix}key_wait_seconds`;
    new SharedLatencyHistogram(
      {
        name: keyWaitName,
        help: 'Time calls waited for their ordering key, seconds (handlers with orderingKey)',
        labelNames,
        registers,
      },
      reader,
      buckets,
      (figures) => figures.keyWait,
    );
    names.push(keyWaitName);
    if (pool !== undefined) {
      poolGauge('pool_threads', 'Worker threads alive', (p) => p.threads);
      poolGauge('pool_queue_size', 'Calls waiting for a worker thread', (p) => p.queueSize);
      poolGauge('pool_max_queue', 'Calls that may wait for a thread before OVERLOADED', (p) => p.maxQueue);
      poolGauge(
        'pool_utilization',
        'Share of thread capacity used since the pool started, 0 to 1',
        (p) => p.utilization,
      );
      poolGauge(
        'pool_in_flight',
        'Calls handed to the pool and not settled, queued ones included',
        (p) => p.inFlight,
      );
    }
  } catch (err) {
    // A name already taken: leave the registry as it was.
    remove();
    throw err;
  }
  return remove;
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
