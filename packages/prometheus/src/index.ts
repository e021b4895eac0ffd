export { CIRCUIT_STATE_VALUES } from './handlerSeries.js';
export type { LatencyBuckets } from './latencyBuckets.js';
export { DEFAULT_LATENCY_BUCKETS, FINE_LATENCY_BUCKETS } from './latencyBuckets.js';
export type { CqrsMetricsOptions } from './registerCqrsMetrics.js';
export { registerCqrsMetrics } from './registerCqrsMetrics.js';
export { EVENT_LOOP_DELAY_QUANTILES } from './runtimeSeries.js';
