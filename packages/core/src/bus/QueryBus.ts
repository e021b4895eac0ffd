import type { StreamOptions } from '../handler/HandlerContext.js';
import type { InputOf, ItemOf, StreamQueryDefinition } from '../messages/Definition.js';
import type { BusOptions } from './Dispatcher.js';
import { Dispatcher } from './Dispatcher.js';
import type { QueryStream } from './QueryStream.js';

/** Routes queries (reads) to their handlers, inline or in the worker pool. */
export class QueryBus extends Dispatcher<'query'> {
  /** @throws CqrsError `INVALID_REGISTRATION` for a bad option. */
  constructor(options: BusOptions = {}) {
    super('query', options);
  }

  /** The names of the registered queries, in registration order. */
  getRegisteredQueries(): string[] {
    return this.registeredNames();
  }

  /**
   * Streams a streaming query (`defineStreamQuery`) by name, for dynamic callers: items are `unknown`.
   * @throws CqrsError (as a rejection of the iterator's first `next()`) with the codes of the overload by
   * definition.
   */
  stream(name: string, input: unknown, options?: StreamOptions): QueryStream<unknown>;
  /**
   * Streams a streaming query: an `AsyncIterable` of its items, typed by the definition's `item`, delivered
   * in order while its handler (an async generator, inline or in the pool) still produces them. The call
   * starts at the first `next()` and passes the middleware then (validation, rate limit, breaker, logging,
   * metrics see its start; `timeout` bounds the whole stream; caching passes it through). The handler is
   * never more than `highWaterMark` items ahead of the consumer. `break` or `return()` stops the handler
   * (its `finally` runs) and frees its thread; the signal does too, and fails the iteration with `ABORTED`.
   * @throws CqrsError (as a rejection of `next()`) `INVALID_REGISTRATION` for a query that is not a streaming
   * one, `HANDLER_NOT_FOUND`, `CLOSED`, `VALIDATION` (also for bad options), `ABORTED`, `TIMEOUT`,
   * `HANDLER_FAILED` (its `cause` rebuilt; after the items before it), `WORKER_CRASHED`, `NOT_CLONEABLE` (an
   * item that cannot cross from its thread), `OVERLOADED`, and whatever middleware adds.
   */
  stream<D extends StreamQueryDefinition>(
    definition: D,
    input: InputOf<D>,
    options?: StreamOptions,
  ): QueryStream<ItemOf<D>>;
  stream(
    target: StreamQueryDefinition | string,
    input: unknown,
    options?: StreamOptions,
  ): QueryStream<unknown> {
    return this.openStream(target, input, options);
  }
}
