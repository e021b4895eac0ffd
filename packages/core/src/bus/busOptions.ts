import type { Metadata } from '../handler/HandlerContext.js';
import type { HandlerFn, StreamHandlerFn, WorkerHandler } from '../handler/handle.js';
import type { Logger } from '../handler/Logger.js';
import type { Definition, InputOf, StreamQueryDefinition } from '../messages/Definition.js';
import type { Middleware } from '../middleware/Middleware.js';
import type { WorkerHandlerRef } from '../pool/inWorker.js';
import type { WorkerPool } from '../pool/WorkerPool.js';

/** Options of {@link CommandBus}, {@link QueryBus} and (with its own additions) {@link EventBus}. */
export interface BusOptions {
  /** The pool that runs `inWorker()` handlers; needed only for those. Buses sharing a pool can call each other from handlers. */
  pool?: WorkerPool;
  /** Applied to every handler of the bus, outermost first, around per-handler middleware. */
  middleware?: readonly Middleware[];
  /**
   * Counts executions, failures, in-flight calls and latency of every handler in shared memory, across all
   * threads (`getMetrics()`). Default true. The recording is the outermost layer unless `metrics()` places it.
   */
  metrics?: boolean;
  /**
   * When false, every error a call rejects with — the `CqrsError` and its `cause` chain, a handler's error
   * rebuilt from its thread included — has its `stack` cut to its first line (`name: message`), for buses
   * that answer untrusted callers. The errors are changed in place (the caller owns them), only on failure;
   * an inline handler's own error, the `cause` of `HANDLER_FAILED`, is changed too. Default true.
   */
  errorStacks?: boolean;
  /**
   * The base of inline handlers' `ctx.logger` (pino-style: a pino logger fits as it is): each call's
   * `ctx.logger` is its child with `{ handler, kind, correlationId? }` bound. Default: a no-op logger.
   * Worker handlers log through the pool's `threadLogger` instead.
   */
  logger?: Logger;
}

/** Options of `registerHandler` (and of `EventBus.subscribe`). */
export interface RegisterOptions<D extends Definition = Definition> {
  /** Applied to this handler only, inside the bus-wide middleware. */
  middleware?: readonly Middleware[];
  /**
   * Per-key order: calls whose key is equal (a string or a number, compared with `===`) start in the order
   * `execute` was called and never overlap, on any thread; calls with other keys, or `undefined`, run in
   * parallel as before. Computed from the raw input, before any middleware (validation included): it must
   * not throw for the inputs callers send (a throw or a key of another type refuses the call with
   * `VALIDATION`). See the README's "Per-key order".
   */
  orderingKey?: (input: InputOf<D>, metadata: Metadata) => string | number | undefined;
  /**
   * Handlers registered with the same group name (on any bus of the same pool) share their keys: a call of
   * one waits for a call of another with the same key — two commands on one aggregate (`Deposit` and
   * `Withdraw` of an account). Default: the handler's own key space.
   */
  orderingGroup?: string;
}

/**
 * What `registerHandler` accepts: an inline function (for a streaming query, an async generator function),
 * an `inWorker()` reference, or a `handle()` value run inline.
 */
export type HandlerFor<D extends Definition> = [D] extends [StreamQueryDefinition]
  ? StreamHandlerFn<D> | WorkerHandlerRef | WorkerHandler<D>
  : HandlerFn<D> | WorkerHandlerRef | WorkerHandler<D>;
