export { CommandBus } from './bus/CommandBus.js';
export type { BusOptions, HandlerFor, RegisterOptions } from './bus/Dispatcher.js';
export { Dispatcher } from './bus/Dispatcher.js';
export { QueryBus } from './bus/QueryBus.js';
export type { CqrsErrorDetails } from './errors/CqrsError.js';
export { CqrsError, isCqrsError } from './errors/CqrsError.js';
export type { ErrorCode } from './errors/codes.js';
export { ErrorCodes } from './errors/codes.js';
export type { BusClient, ExecuteOptions, HandlerContext, Metadata } from './handler/HandlerContext.js';
export type { HandlerFn, WorkerHandler } from './handler/handle.js';
export { handle } from './handler/handle.js';
export type {
  CommandDefinition,
  Definition,
  DefinitionSchemas,
  InputOf,
  MessageKind,
  ParsedInputOf,
  QueryDefinition,
  ResultOf,
} from './messages/Definition.js';
export { defineCommand } from './messages/defineCommand.js';
export { defineQuery } from './messages/defineQuery.js';
export type { Call, Middleware, Next } from './middleware/Middleware.js';
export { metrics } from './middleware/metrics.js';
export type { WorkerHandlerRef } from './pool/inWorker.js';
export { inWorker } from './pool/inWorker.js';
export type { WorkerPoolOptions } from './pool/WorkerPool.js';
export { WorkerPool } from './pool/WorkerPool.js';
export type { HandlerMetrics, LatencySummary, MetricsSnapshot } from './shared/MetricsRegion.js';
