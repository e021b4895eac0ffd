import { Counter, Gauge } from 'prom-client';
import type { MetricSet } from './MetricSet.js';
import type { PoolFigures, ScrapeReader } from './ScrapeReader.js';

/** Registers the `<prefix>pool_*` series of {@link registerCqrsMetrics} in `set`. */
export function registerPoolSeries(set: MetricSet, reader: ScrapeReader): void {
  const { registers } = set;
  const gauge = (suffix: string, help: string, value: (figures: PoolFigures) => number): void => {
    new Gauge({
      name: set.name(suffix),
      help,
      registers,
      collect(): void {
        const figures = reader.read().pool;
        if (figures !== undefined) this.set(value(figures));
      },
    });
  };
  gauge('pool_threads', 'Worker threads alive', (p) => p.threads);
  gauge('pool_queue_size', 'Calls waiting for a worker thread', (p) => p.queueSize);
  gauge('pool_max_queue', 'Calls that may wait for a thread before OVERLOADED', (p) => p.maxQueue);
  gauge(
    'pool_in_flight',
    'Calls handed to the pool and not settled, queued ones included',
    (p) => p.inFlight,
  );
  new Counter({
    name: set.name('pool_busy_seconds_total'),
    help: 'Thread-seconds the worker threads were busy holding a call; its rate over the threads is their busy fraction',
    registers,
    collect(): void {
      const figures = reader.read().pool;
      if (figures === undefined) return;
      this.reset();
      this.inc(figures.busySeconds);
    },
  });
}
