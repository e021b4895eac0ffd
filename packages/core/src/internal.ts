// `@cqrs-pool/core/internal`: what this repository's own packages (`@cqrs-pool/prometheus`) need of core's
// internals to read the shared-memory metrics. Not public API: it may change with any release of core.
export type { MetricsSources } from './bus/Dispatcher.js';
// For `@cqrs-pool/nats`: errors cross machines as they cross threads, and a remote outcome is passed on as is.
export { isForwarded, markForwarded } from './errors/forwarded.js';
export type { SerializedError } from './errors/serialize.js';
export { deserializeError, serializeError } from './errors/serialize.js';
export type { CircuitState } from './shared/breakerState.js';
export { TRANSITIONS } from './shared/breakerState.js';
export {
  BUCKETS,
  bucketIndex,
  bucketLowerBound,
  bucketUpperBound,
  OVERFLOW_BUCKET,
  OVERFLOW_MICROS,
} from './shared/histogram.js';
export type { MetricsRegion } from './shared/MetricsRegion.js';
// For `@cqrs-pool/nats`: a batched call's deadline aborts it without an AbortSignal (Dispatcher.executeCancellable).
export { CancelToken } from './util/CancelToken.js';
