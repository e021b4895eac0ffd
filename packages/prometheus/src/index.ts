export type { LatencyBuckets } from './latencyBuckets.js';
export { DEFAULT_LATENCY_BUCKETS } from './latencyBuckets.js';
export type { CqrsMetricsOptions } from './registerCqrsMetrics.js';
export { CIRCUIT_STATE_VALUES, registerCqrsMetrics } from './registerCqrsMetrics.js';
