import { Histogram, type HistogramConfiguration } from 'prom-client';
import { cumulativeCounts, type LatencyBuckets } from './latencyBuckets.js';
import type { HandlerFigures, HandlerLabel, MicrosHistogram, ScrapeReader } from './ScrapeReader.js';

type HistogramData = Awaited<ReturnType<Histogram<string>['get']>>;
type HistogramValue = HistogramData['values'][number];

/** Which shared histogram of a handler a {@link SharedLatencyHistogram} publishes; undefined: none for it. */
export type HistogramSource = (figures: HandlerFigures) => MicrosHistogram | undefined;

const handlerLatency: HistogramSource = (figures) => figures;

/**
 * `<prefix>latency_seconds{handler,kind}` (or another histogram of µs the region keeps per handler: the call
 * duration, the queue wait, the key wait): a prom-client Histogram whose values are the shared histogram's,
 * read on scrape. prom-client's Histogram can only `observe` one sample at a time, so this subclass answers
 * `get()` (and `getForPromString()`, which the registry prefers) itself, in the shape Histogram produces:
 * cumulative `_bucket{le}` series, `_sum` in seconds and `_count` — so the exposition says `histogram` and
 * aggregates like any other. Samples passed to `observe` are ignored: the shared memory is the only source.
 */
export class SharedLatencyHistogram extends Histogram<HandlerLabel> {
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(
    config: HistogramConfiguration<HandlerLabel>,
    private readonly reader: ScrapeReader,
    private readonly buckets: LatencyBuckets,
    private readonly source: HistogramSource = handlerLatency,
  ) {
    super({ ...config, buckets: [...buckets.le] });
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  override async get(): Promise<HistogramData> {
    return this.data();
  }

  /** What prom-client's registry calls when it renders the text exposition. */
  async getForPromString(): Promise<HistogramData> {
    return this.data();
  }

  private data(): HistogramData {
    const values: HistogramValue[] = [];
    const bucketName = `${this.metricName}_bucket`;
    for (const figures of this.reader.read().handlers) {
      const histogram = this.source(figures);
      if (histogram === undefined) continue;
      const labels = figures.labels;
      const cumulative = cumulativeCounts(histogram.counts, this.buckets);
      let count = 0;
      for (const n of histogram.counts) count += n;
      this.buckets.le.forEach((le, i) => {
        values.push({
          labels: { ...labels, le } as HistogramValue['labels'],
          value: cumulative[i] ?? 0,
          metricName: bucketName,
        });
      });
      values.push({
        labels: { ...labels, le: '+Inf' } as HistogramValue['labels'],
        value: count,
        metricName: bucketName,
      });
      values.push({ labels, value: histogram.sumMicros / 1e6, metricName: `${this.metricName}_sum` });
      values.push({ labels, value: count, metricName: `${this.metricName}_count` });
    }
    return {
      name: this.metricName,
      help: this.metricHelp,
      // prom-client's declarations type this as an enum; at run time it is the string of the TYPE line.
      type: 'histogram' as unknown as HistogramData['type'],
      values,
      aggregator: 'sum',
    } as HistogramData;
  }
}
