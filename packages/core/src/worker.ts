// The entry handler modules import inside pool threads: `import { handle } from '@cqrs-pool/core/worker'`.
// It pulls in no bus and no pool, so a thread loads only what a handler needs.
export { CqrsError, isCqrsError } from './errors/CqrsError.js';
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
export type { Logger, LogLevel, LogMethod } from './handler/Logger.js';
