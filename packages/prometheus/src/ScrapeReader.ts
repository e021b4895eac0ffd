import type { CommandBus, EventBus, MessageKind, QueryBus, WorkerPool } from '@cqrs-pool/core';
import type { CircuitState, MetricsRegion, MetricsSources } from '@cqrs-pool/core/internal';
import { BUCKETS } from '@cqrs-pool/core/internal';

/**
 * The labels of every per-handler series, in this order. Every series builds its labels from
 * {@link HandlerFigures.labels}, so a label added here (and there) reaches them all.
 */
export const HANDLER_LABELS = ['handler', 'kind', 'subscriber'] as const;
export type HandlerLabel = (typeof HANDLER_LABELS)[number];

/** The buses whose figures are exported. */
export type MetricsBus = CommandBus | QueryBus | EventBus;

/** A shared histogram of µs, summed over threads: counts per bucket and the sum of what it counts. */
export interface MicrosHistogram {
  readonly counts: number[];
  sumMicros: number;
}

/** The figures of one handler at a scrape, summed over every thread (and over buses sharing its name). */
export interface HandlerFigures extends MicrosHistogram {
  /** The message's name: for an event subscriber, its event's. */
  readonly handler: string;
  readonly kind: MessageKind;
  /** An event subscriber's name; undefined for command and query handlers. */
  readonly subscriber: string | undefined;
  /**
   * The labels of this handler's series: `handler` and `kind`, and `subscriber` for an event subscriber
   * (command and query series carry no `subscriber` label at all, so they read as before).
   */
  readonly labels: Readonly<Partial<Record<HandlerLabel, string>>>;
  executions: number;
  failures: number;
  /**
   * Failures by the error code the caller got (counted on the main thread as failures settle), with a 0 for
   * every code the handler's chain can produce that has not occurred yet.
   */
  readonly failuresByCode: Record<string, number>;
  inFlight: number;
  circuit: CircuitState;
  /** Breaker transitions by kind (`TRANSITIONS` order) for a handler a breaker guards; undefined otherwise. */
  transitions: number[] | undefined;
  // `counts` and `sumMicros` (inherited): the run time of the timed calls, measured where they ran.
  /** The duration callers saw, execute to settled (inline handlers' calls sampled as their run time is). */
  readonly call: MicrosHistogram;
  /** Worker handlers: the time calls waited for a thread, from pool.run to the handler's start. */
  queueWait: MicrosHistogram | undefined;
  /** Per-key order (a handler registered with `orderingKey`): calls waiting now, and the key-wait histogram. */
  keyWait: (MicrosHistogram & { waiting: number }) | undefined;
}

/** The pool's figures at a scrape. */
export interface PoolFigures {
  readonly threads: number;
  readonly queueSize: number;
  readonly maxQueue: number;
  readonly inFlight: number;
  readonly busySeconds: number;
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
      for (const source of handlers) {
        // As getMetrics(): handlers whose calls are not counted have no series.
        if (!source.recorded) continue;
        const figures = readHandler(region, kind, source);
        const key = `${kind}:${source.name}`;
        const known = byKey.get(key);
        // Buses of one kind on different pools may both have a handler of this name: one series, summed.
        if (known === undefined) byKey.set(key, figures);
        else merge(known, figures);
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
              inFlight: pool.inFlight,
              busySeconds: pool.busySeconds,
            },
    };
  }
}

type Source = MetricsSources['handlers'][number];

function readHandler(region: MetricsRegion, kind: MessageKind, source: Source): HandlerFigures {
  const { slot, subscriber } = source;
  // An event subscriber's series are its event's (`handler`), told apart by `subscriber`.
  const handler = source.message ?? source.name;
  // Executions before the histogram, as handlerMetrics reads them: a call counted has its latency.
  const figures = region.handlerMetrics(slot);
  const latency = region.readLatency(slot);
  const failuresByCode: Record<string, number> = {};
  for (const code of source.failureCodes) failuresByCode[code] = 0;
  Object.assign(failuresByCode, figures.failuresByCode);
  return {
    handler,
    kind,
    subscriber,
    labels: subscriber === undefined ? { handler, kind } : { handler, kind, subscriber },
    executions: figures.executions,
    failures: figures.failures,
    failuresByCode,
    inFlight: figures.inFlight,
    circuit: figures.circuit,
    transitions: source.breaker ? region.readTransitions(slot) : undefined,
    counts: latency.counts,
    sumMicros: latency.sumMicros,
    call: region.readCallDuration(slot),
    queueWait: source.pooled ? region.readQueueWait(slot) : undefined,
    keyWait: source.ordered ? region.readKeyWait(slot) : undefined,
  };
}

/** Adds the figures of `more` (the same handler on another bus) into `into`. */
function merge(into: HandlerFigures, more: HandlerFigures): void {
  into.executions += more.executions;
  into.failures += more.failures;
  for (const [code, count] of Object.entries(more.failuresByCode)) {
    into.failuresByCode[code] = (into.failuresByCode[code] ?? 0) + count;
  }
  into.inFlight += more.inFlight;
  if (severity[more.circuit] > severity[into.circuit]) into.circuit = more.circuit;
  if (more.transitions !== undefined) {
    const known = into.transitions;
    into.transitions =
      known === undefined ? more.transitions : known.map((n, i) => n + (more.transitions?.[i] ?? 0));
  }
  addHistogram(into, more);
  addHistogram(into.call, more.call);
  if (more.queueWait !== undefined) {
    if (into.queueWait === undefined) into.queueWait = more.queueWait;
    else addHistogram(into.queueWait, more.queueWait);
  }
  if (more.keyWait !== undefined) {
    if (into.keyWait === undefined) into.keyWait = more.keyWait;
    else {
      into.keyWait.waiting += more.keyWait.waiting;
      addHistogram(into.keyWait, more.keyWait);
    }
  }
}

function addHistogram(into: MicrosHistogram, more: MicrosHistogram): void {
  for (let b = 0; b < BUCKETS; b++) into.counts[b] = (into.counts[b] ?? 0) + (more.counts[b] ?? 0);
  into.sumMicros += more.sumMicros;
}
