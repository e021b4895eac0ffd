import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Summary } from 'prom-client';
import type { MetricSet } from './MetricSet.js';

/** `eventLoopDelay` of {@link registerCqrsMetrics}, resolved. */
export interface EventLoopDelaySettings {
  /** How often the loop's timer samples the delay, in ms (`monitorEventLoopDelay`'s `resolution`). */
  readonly resolutionMs: number;
}

/** The quantiles `<prefix>event_loop_delay_seconds` reports. */
export const EVENT_LOOP_DELAY_QUANTILES = [0.5, 0.9, 0.99, 0.999, 1] as const;

type SummaryData = Awaited<ReturnType<Summary<string>['get']>>;
type SummaryValue = SummaryData['values'][number];

/**
 * `<prefix>event_loop_delay_seconds`: how late the main thread's event loop ran a timer due every
 * `resolutionMs` (`monitorEventLoopDelay`, sampled in libuv, no JavaScript per sample), as a summary. The
 * quantiles (`quantile="1"` is the maximum) are over the samples since the previous read of the metric —
 * the last scrape interval when one server scrapes — and `_sum` / `_count` add up every sample since it was
 * registered. A sample is the time between two timer runs minus `resolutionMs`, so a loop that keeps up reads
 * about 0.
 */
class EventLoopDelaySummary extends Summary<string> {
  private readonly metricName: string;
  private readonly metricHelp: string;
  private sumSeconds = 0;
  private count = 0;

  constructor(
    name: string,
    help: string,
    registers: MetricSet['registers'],
    private readonly monitor: IntervalHistogram,
    private readonly resolutionMs: number,
  ) {
    super({ name, help, registers, percentiles: [...EVENT_LOOP_DELAY_QUANTILES] });
    this.metricName = name;
    this.metricHelp = help;
  }

  override async get(): Promise<SummaryData> {
    const monitor = this.monitor;
    const samples = monitor.count;
    const late = (ns: number): number => Math.max(0, ns / 1e9 - this.resolutionMs / 1000);
    const values: SummaryValue[] = EVENT_LOOP_DELAY_QUANTILES.map((q) => ({
      labels: { quantile: q },
      // No sample since the last read: no quantile to tell (Prometheus's convention is NaN).
      value: samples === 0 ? Number.NaN : late(q === 1 ? monitor.max : monitor.percentile(q * 100)),
    }));
    if (samples > 0) {
      this.sumSeconds += late(monitor.mean) * samples;
      this.count += samples;
    }
    monitor.reset();
    values.push({ labels: {}, value: this.sumSeconds, metricName: `${this.metricName}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.metricName}_count` });
    return {
      name: this.metricName,
      help: this.metricHelp,
      // prom-client's declarations type this as an enum; at run time it is the string of the TYPE line.
      type: 'summary' as unknown as SummaryData['type'],
      values,
      aggregator: 'sum',
    } as SummaryData;
  }
}

/** Registers `<prefix>event_loop_delay_seconds` in `set`; the monitor stops when the set is removed. */
export function registerEventLoopDelay(set: MetricSet, settings: EventLoopDelaySettings): void {
  const monitor = monitorEventLoopDelay({ resolution: settings.resolutionMs });
  const name = set.name('event_loop_delay_seconds');
  new EventLoopDelaySummary(
    name,
    "Delay of the main thread's event loop beyond schedule, seconds (quantiles since the previous scrape)",
    set.registers,
    monitor,
    settings.resolutionMs,
  );
  monitor.enable();
  set.onRemove(() => monitor.disable());
}

/**
 * Registers prom-client's default metrics (`process_*`, `nodejs_*`: CPU, memory, heap, GC, handles, event
 * loop lag) in `set`'s registry, with `prefix` before their names, and remembers their names for removal.
 */
export function registerProcessMetrics(set: MetricSet, prefix: string): void {
  const registry = set.registry;
  const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
  try {
    collectDefaultMetrics({ register: registry, prefix });
  } finally {
    // Whatever it managed to register before a clash is taken out again with the rest of the set.
    set.adopt(registry.getMetricsAsArray().flatMap((m) => (before.has(m.name) ? [] : [m.name])));
  }
}
