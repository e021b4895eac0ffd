import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';

/** A prom-client registry, of either content type. */
export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/**
 * The metrics one `registerCqrsMetrics` call put in a registry: their names (with the prefix), so that they
 * can all be removed again, and whatever must be stopped with them.
 */
export class MetricSet {
  readonly registers: AnyRegistry[];
  private readonly names: string[] = [];
  private readonly stops: (() => void)[] = [];

  constructor(
    readonly registry: AnyRegistry,
    readonly prefix: string,
  ) {
    this.registers = [registry];
  }

  /** The full name of a metric of this set, remembered for `remove`. Call before creating the metric. */
  name(suffix: string): string {
    const name = `${this.prefix}${suffix}`;
    this.names.push(name);
    return name;
  }

  /** Remembers metrics registered by someone else (prom-client's default metrics), by their full names. */
  adopt(names: Iterable<string>): void {
    this.names.push(...names);
  }

  /** Runs `stop` when the set is removed (a monitor to disable). */
  onRemove(stop: () => void): void {
    this.stops.push(stop);
  }

  /** Takes every metric of the set out of the registry and stops what runs for them. Idempotent. */
  remove(): void {
    for (const name of this.names.splice(0)) this.registry.removeSingleMetric(name);
    for (const stop of this.stops.splice(0)) stop();
  }
}
