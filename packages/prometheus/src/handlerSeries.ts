import { TRANSITIONS } from '@cqrs-pool/core/internal';
import { Counter, Gauge } from 'prom-client';
import type { LatencyBuckets } from './latencyBuckets.js';
import type { MetricSet } from './MetricSet.js';
import { HANDLER_LABELS, type HandlerFigures, type ScrapeReader } from './ScrapeReader.js';
import { type HistogramSource, SharedLatencyHistogram } from './SharedLatencyHistogram.js';

/** Circuit states as numbers in `<prefix>circuit_state`. */
export const CIRCUIT_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;

type Sample = { readonly labels: Readonly<Record<string, string>>; readonly value: number };

/**
 * Registers the per-handler series of {@link registerCqrsMetrics} in `set`. Each reads the scrape's figures
 * in prom-client's `collect`: emptied, then set to the shared figures — a counter can only grow by `inc`,
 * so it is increased from zero to the shared count; the exposition still types it `counter`.
 */
export function registerHandlerSeries(set: MetricSet, reader: ScrapeReader, buckets: LatencyBuckets): void {
  const { registers } = set;
  const series = (
    Metric: typeof Counter | typeof Gauge,
    suffix: string,
    help: string,
    samples: (figures: HandlerFigures) => Iterable<Sample>,
    extraLabels: readonly string[] = [],
  ): void => {
    const collect = function (this: Counter | Gauge): void {
      this.reset();
      for (const figures of reader.read().handlers) {
        for (const { labels, value } of samples(figures)) {
          if (this instanceof Gauge) this.set(labels, value);
          else this.inc(labels, value);
        }
      }
    };
    new Metric({
      name: set.name(suffix),
      help,
      labelNames: [...HANDLER_LABELS, ...extraLabels],
      registers,
      collect,
    });
  };
  const one = (value: (figures: HandlerFigures) => number) => (figures: HandlerFigures) => [
    { labels: figures.labels, value: value(figures) },
  ];
  const histogram = (suffix: string, help: string, source: HistogramSource): void => {
    new SharedLatencyHistogram(
      { name: set.name(suffix), help, labelNames: HANDLER_LABELS, registers },
      reader,
      buckets,
      source,
    );
  };

  series(
    Counter,
    'executions_total',
    'Handler calls settled, refusals and retries included',
    one((f) => f.executions),
  );
  series(
    Counter,
    'failures_total',
    'Handler calls that failed, refusals included, by error code',
    (f) =>
      Object.entries(f.failuresByCode).map(([code, value]) => ({ labels: { ...f.labels, code }, value })),
    ['code'],
  );
  series(
    Gauge,
    'in_flight',
    'Handler calls started and not yet settled',
    one((f) => f.inFlight),
  );
  series(
    Gauge,
    'circuit_state',
    'Circuit breaker state: 0 closed, 1 half-open, 2 open',
    one((f) => CIRCUIT_STATE_VALUES[f.circuit]),
  );
  series(
    Counter,
    'circuit_transitions_total',
    'Circuit breaker transitions, by the states left and entered (handlers with a breaker)',
    (f) =>
      f.transitions === undefined
        ? []
        : TRANSITIONS.map(([from, to], i) => ({
            labels: { ...f.labels, from, to },
            value: f.transitions?.[i] ?? 0,
          })),
    ['from', 'to'],
  );
  histogram('latency_seconds', 'Run time of timed handler calls, where they ran, seconds', (f) => f);
  histogram(
    'call_duration_seconds',
    'Duration of handler calls as their callers saw it, execute to settled, seconds',
    (f) => f.call,
  );
  histogram(
    'queue_wait_seconds',
    'Time worker handler calls waited for a thread, from the pool to their start, seconds',
    (f) => f.queueWait,
  );
  series(Gauge, 'key_waiting', 'Calls waiting for their ordering key (handlers with orderingKey)', (f) =>
    f.keyWait === undefined ? [] : [{ labels: f.labels, value: f.keyWait.waiting }],
  );
  histogram(
    'key_wait_seconds',
    'Time calls waited for their ordering key, seconds (handlers with orderingKey)',
    (f) => f.keyWait,
  );
}
