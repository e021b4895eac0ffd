export { CommandBus } from './bus/CommandBus.js';
export type { BusOptions, HandlerFor, RegisterOptions } from './bus/Dispatcher.js';
export { Dispatcher } from './bus/Dispatcher.js';
export type { EventBusOptions, EventFailure, SubscribeOptions } from './bus/EventBus.js';
export { EventBus } from './bus/EventBus.js';
export { QueryBus } from './bus/QueryBus.js';
export type { QueryStream } from './bus/QueryStream.js';
export type { StreamSink } from './bus/StreamSink.js';
export type { CqrsConfig, CqrsConfigInput } from './config/configSchema.js';
export { configSchema } from './config/configSchema.js';
export type { CqrsRuntime, CreateFromConfigOptions } from './config/createFromConfig.js';
export { createFromConfig } from './config/createFromConfig.js';
export { loadConfig, parseConfig } from './config/loadConfig.js';
export type { CqrsErrorDetails } from './errors/CqrsError.js';
export { CqrsError, isCqrsError } from './errors/CqrsError.js';
export type { ErrorCode } from './errors/codes.js';
export { ErrorCodes } from './errors/codes.js';
export type {
  EventClient,
  PublishOptions,
  PublishReport,
  PublishStrategy,
  SubscriberFailure,
} from './handler/EventClient.js';
export type {
  BusClient,
  ExecuteOptions,
  HandlerContext,
  Metadata,
  QueryClient,
  StreamOptions,
} from './handler/HandlerContext.js';
export type { HandlerFn, StreamHandlerFn, WorkerHandler } from './handler/handle.js';
export { handle } from './handler/handle.js';
export type {
  CommandDefinition,
  Definition,
  DefinitionSchemas,
  EventDefinition,
  InputOf,
  ItemOf,
  MessageKind,
  ParsedInputOf,
  ParsedPayloadOf,
  PayloadOf,
  QueryDefinition,
  ResultOf,
  StreamQueryDefinition,
} from './messages/Definition.js';
export { defineCommand } from './messages/defineCommand.js';
export type { EventSchemas } from './messages/defineEvent.js';
export { defineEvent } from './messages/defineEvent.js';
export { defineQuery } from './messages/defineQuery.js';
export type { StreamQuerySchemas } from './messages/defineStreamQuery.js';
export { defineStreamQuery } from './messages/defineStreamQuery.js';
export type { CachingMiddleware, CachingOptions } from './middleware/caching.js';
export { caching } from './middleware/caching.js';
export type { CircuitBreakerOptions, CircuitStateChange } from './middleware/circuitBreaker.js';
export { circuitBreaker } from './middleware/circuitBreaker.js';
export type { ConsoleLogger, ConsoleLoggerOptions } from './middleware/consoleLogger.js';
export { consoleLogger } from './middleware/consoleLogger.js';
export type {
  CallLogLine,
  LoggedError,
  Logger,
  LoggingOptions,
  LogLevel,
  LogMethod,
} from './middleware/logging.js';
export { logging } from './middleware/logging.js';
export type { Call, Middleware, Next } from './middleware/Middleware.js';
export { metrics } from './middleware/metrics.js';
export type { RateLimitOptions } from './middleware/rateLimit.js';
export { rateLimit } from './middleware/rateLimit.js';
export type { RetryOptions } from './middleware/retry.js';
export { retry } from './middleware/retry.js';
export type { TimeoutOptions } from './middleware/timeout.js';
export { timeout } from './middleware/timeout.js';
export type { ValidationOptions } from './middleware/validation.js';
export { validation } from './middleware/validation.js';
export type { HealthOptions, HealthSnapshot } from './pool/health.js';
export { healthSnapshot } from './pool/health.js';
export type { WorkerHandlerRef } from './pool/inWorker.js';
export { inWorker } from './pool/inWorker.js';
export type { WorkerPoolOptions } from './pool/WorkerPool.js';
export { WorkerPool } from './pool/WorkerPool.js';
export type { CircuitState } from './shared/breakerState.js';
export type {
  HandlerMetrics,
  LatencySummary,
  MetricsSnapshot,
  OrderingMetrics,
  StreamMetrics,
} from './shared/MetricsRegion.js';
export { callSignal } from './util/callAbort.js';
