import type { CommandBus, EventBus, MessageKind, QueryBus, WorkerPool } from '@cqrs-pool/core';
import type { CircuitState } from '@cqrs-pool/core/internal';
import { BUCKETS } from '@cqrs-pool/core/internal';

/** The buses whose figures are exported. */
export type MetricsBus = CommandBus | QueryBus | EventBus;

/** The figures of one handler at a scrape, summed over every thread (and over buses sharing its name). */
export interface HandlerFigures {
  /** The message's name: for an event subscriber, its event's. */
  readonly handler: string;
  readonly kind: MessageKind;
  /** An event subscriber's name; undefined for command and query handlers. */
  readonly subscriber: string | undefined;
  executions: number;
  failures: number;
  /** Failures by the error code the caller got (counted on the main thread as failures settle). */
  readonly failuresByCode: Record<string, number>;
  inFlight: number;
  circuit: CircuitState;
  /** The shared histogram: timed calls per bucket of integer µs. */
  readonly counts: number[];
  /** Sum of the timed latencies, µs. */
  sumMicros: number;
  /** Per-key order (a handler registered with `orderingKey`): calls waiting now, and the key-wait histogram. */
  keyWait: { waiting: number; readonly counts: number[]; sumMicros: number } | undefined;
}

/** The pool's gauges at a scrape. */
export interface PoolFigures {
  readonly threads: number;
  readonly queueSize: number;
  readonly maxQueue: number;
  readonly utilization: number;
  readonly inFlight: number;
}

/** What one scrape reads. */
export interface Scrape {
  readonly handlers: readonly HandlerFigures[];
  readonly pool: PoolFigures | undefined;
}

const severity: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * Reads the buses' shared-memory figures once per scrape. prom-client asks each metric for its values in one
 * synchronous pass (`registry.metrics()` starts every `get()` before awaiting any), so the first metric's
 * read is kept until the next microtask and the others reuse it: every series of one scrape comes from the
 * same read, and the region is walked once, not once per metric.
 */
export class ScrapeReader {
  private cached: Scrape | undefined;

  constructor(
    private readonly buses: readonly MetricsBus[],
    private readonly pool: WorkerPool | undefined,
  ) {}

  /** The figures of this scrape. */
  read(): Scrape {
    if (this.cached === undefined) {
      this.cached = this.readNow();
      queueMicrotask(() => {
        this.cached = undefined;
      });
    }
    return this.cached;
  }

  private readNow(): Scrape {
    const byKey = new Map<string, HandlerFigures>();
    for (const bus of this.buses) {
      const { kind, region, handlers } = bus.metricsSources();
      if (region === undefined) continue;
      for (const { name, slot, recorded, ordered, message, subscriber } of handlers) {
        // As getMetrics(): handlers whose calls are not counted have no series.
        if (!recorded) continue;
        // Executions before the histogram, as handlerMetrics reads them: a call counted has its latency.
        const figures = region.handlerMetrics(slot);
        const latency = region.readLatency(slot);
        const keyWait = ordered ? region.readKeyWait(slot) : undefined;
        const key = `${kind}:${name}`;
        const known = byKey.get(key);
        if (known === undefined) {
          byKey.set(key, {
            handler: message ?? name,
            kind,
            subscriber,
            executions: figures.executions,
            failures: figures.failures,
            failuresByCode: { ...figures.failuresByCode },
            inFlight: figures.inFlight,
            circuit: figures.circuit,
            counts: latency.counts,
            sumMicros: latency.sumMicros,
            keyWait,
          });
          continue;
        }
        // Buses of one kind on different pools may both have a handler of this name: one series, summed.
        known.executions += figures.executions;
        known.failures += figures.failures;
        for (const [code, count] of Object.entries(figures.failuresByCode)) {
          known.failuresByCode[code] = (known.failuresByCode[code] ?? 0) + count;
        }
        known.inFlight += figures.inFlight;
        if (severity[figures.circuit] > severity[known.circuit]) known.circuit = figures.circuit;
        for (let b = 0; b < BUCKETS; b++) known.counts[b] = (known.counts[b] ?? 0) + (latency.counts[b] ?? 0);
        known.sumMicros += latency.sumMicros;
        if (keyWait !== undefined) {
          if (known.keyWait === undefined) known.keyWait = keyWait;
          else {
            known.keyWait.waiting += keyWait.waiting;
            known.keyWait.sumMicros += keyWait.sumMicros;
            for (let b = 0; b < BUCKETS; b++) {
              known.keyWait.counts[b] = (known.keyWait.counts[b] ?? 0) + (keyWait.counts[b] ?? 0);
            }
          }
        }
      }
    }
    const pool = this.pool;
    return {
      handlers: [...byKey.values()],
      pool:
        pool === undefined
          ? undefined
          : {
              threads: pool.threads,
              queueSize: pool.queueSize,
              maxQueue: pool.maxQueue,
              utilization: pool.utilization,
              inFlight: pool.inFlight,
            },
    };
  }
}
