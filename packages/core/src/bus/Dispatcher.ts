import { CqrsError } from '../errors/CqrsError.js';
import { badExecuteOptions } from '../handler/badExecuteOptions.js';
import type { ExecuteOptions, Metadata, StreamOptions } from '../handler/HandlerContext.js';
import { badStreamOptions, highWaterMarkOf } from '../handler/streamOptions.js';
import type { Definition, InputOf, MessageKind, ResultOf } from '../messages/Definition.js';
import { definerOf } from '../messages/defineMessage.js';
import { isStreamQuery } from '../messages/defineStreamQuery.js';
import type { NestedTarget } from '../pool/BusDirectory.js';
import type { MetricsSnapshot } from '../shared/MetricsRegion.js';
import type { CancelToken } from '../util/CancelToken.js';
import type {
  BusOptions,
  HandlerFor,
  MetricsSources,
  RegisterOptions,
  Registration,
} from './ChainRegistry.js';
import { ChainRegistry } from './ChainRegistry.js';
import { callKey } from './keyOrdering.js';
import { QueryStream } from './QueryStream.js';

export type { BusOptions, HandlerFor, MetricsSources, RegisterOptions } from './ChainRegistry.js';

const noMetadata: Metadata = Object.freeze({});

/**
 * What both buses are: O(1) routing by name to a handler wrapped, once, in its middleware chain (built and
 * run by a {@link ChainRegistry}, as the event bus's subscribers are). The subclasses only fix the kind.
 */
export abstract class Dispatcher<K extends MessageKind> implements NestedTarget {
  private readonly handlers = new Map<string, Registration>();
  private readonly registry: ChainRegistry;

  protected constructor(
    readonly kind: K,
    options: BusOptions = {},
  ) {
    this.registry = new ChainRegistry(kind === 'command' ? 'CommandBus' : 'QueryBus', kind, options);
    this.registry.directory.attach(this);
  }

  /**
   * Registers the handler of `definition`: an inline function (runs on the main thread), `inWorker(url,
   * export)` (runs in the pool), or a `handle()` value (run inline). Its middleware chain is built here, once.
   * @throws CqrsError `INVALID_REGISTRATION` (bad definition, missing handler, worker handler without a
   * pool), `DUPLICATE_HANDLER` (the name has a handler), `CLOSED` (the bus is closed).
   */
  registerHandler<D extends Definition<K>>(
    definition: D,
    handler: HandlerFor<D>,
    options: RegisterOptions<D> = {},
  ): void {
    if (this.registry.closed) throw new CqrsError('CLOSED', 'registerHandler: the bus is closed');
    const name = checkDefinition(definition, this.kind);
    if (this.handlers.has(name)) {
      throw new CqrsError('DUPLICATE_HANDLER', `${name}: a handler is already registered`, { handler: name });
    }
    const registration = this.registry.register(
      name,
      definition,
      handler as HandlerFor<Definition>,
      options as RegisterOptions,
    );
    this.handlers.set(name, registration);
  }

  /**
   * Executes a message through its middleware and handler. By definition, input and result are typed; by
   * name (for dynamic callers), they are `unknown`.
   * @throws CqrsError (as a rejection) `HANDLER_NOT_FOUND`, `CLOSED`, `ABORTED`, `HANDLER_FAILED`,
   * `WORKER_CRASHED`, `NOT_CLONEABLE`, `OVERLOADED`, `INVALID_REGISTRATION`, and whatever middleware adds;
   * `VALIDATION` for options that are not `{ signal?: AbortSignal, metadata?: object }` (nothing runs).
   */
  execute(name: string, input: unknown, options?: ExecuteOptions): Promise<unknown>;
  // Last: when no overload matches, TypeScript reports the last one's error, so a wrong input is reported at
  // its field ("the expected type comes from property 'userId'"), not as "not assignable to type 'string'".
  /**
   * Executes `definition` through its middleware and handler; input and result are typed by its schemas.
   * @throws CqrsError (as a rejection) with the codes of the overload by name.
   */
  execute<D extends Definition<K>>(
    definition: D,
    input: InputOf<D>,
    options?: ExecuteOptions,
  ): Promise<ResultOf<D>>;
  execute(target: Definition | string, input: unknown, options?: ExecuteOptions): Promise<unknown> {
    if (this.registry.closed) {
      return this.registry.refuse(new CqrsError('CLOSED', `${targetName(target)}: the bus is closed`));
    }
    if (typeof target === 'object' && target !== null && target.kind !== this.kind) {
      return this.registry.refuse(
        new CqrsError(
          'HANDLER_NOT_FOUND',
          target.kind === 'event'
            ? `${target.name} is an event; publish it on an EventBus`
            : `${target.name} is a ${target.kind}; execute it on a ${target.kind} bus`,
          { handler: target.name },
        ),
      );
    }
    if (options !== undefined) {
      const bad = badExecuteOptions(options);
      if (bad !== undefined) {
        const name = targetName(target);
        return this.registry.refuse(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
      }
    }
    if (isStreamQuery(target as Definition)) return this.registry.refuse(useStream(targetName(target)));
    return this.dispatch(
      targetName(target),
      input,
      options?.metadata ?? noMetadata,
      options?.signal,
      undefined,
      0,
    );
  }

  /**
   * A nested call from a handler (options already checked by the caller's client); accepted while the bus
   * drains, since its caller is one of the calls it waits for. @internal
   */
  executeNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (this.registry.finished) {
      return this.registry.refuse(new CqrsError('CLOSED', `${name}: the bus is closed`));
    }
    return this.dispatch(name, input, metadata, signal, originThread, depth);
  }

  /**
   * A nested stream from a handler (options already checked by the caller's client, metadata merged). @internal
   */
  streamNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    options: StreamOptions | undefined,
  ): QueryStream {
    return this.openStream(name, input, options, { metadata, originThread, depth });
  }

  /**
   * A call its transport bounds by a deadline of its own (`@cqrs-pool/nats`'s batched calls): `cancel`
   * aborts it as a caller's signal would — its queued pooled call dropped, its handler told, one running past
   * the grace period having its thread terminated — without an AbortSignal, which costs ~3.4 µs a call on
   * Node 20. Checked as `execute` by name checks it. @internal
   */
  executeCancellable(
    name: string,
    input: unknown,
    metadata: Metadata,
    cancel: CancelToken,
  ): Promise<unknown> {
    if (this.registry.closed) {
      return this.registry.refuse(new CqrsError('CLOSED', `${name}: the bus is closed`));
    }
    const bad = badExecuteOptions({ metadata });
    if (bad !== undefined) {
      return this.registry.refuse(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
    }
    return this.dispatch(name, input, metadata, undefined, undefined, 0, cancel);
  }

  private dispatch(
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    originThread: number | undefined,
    depth: number,
    cancel?: CancelToken,
  ): Promise<unknown> {
    const registration = this.handlers.get(name);
    if (registration === undefined) {
      return this.registry.refuse(
        new CqrsError('HANDLER_NOT_FOUND', `no ${this.kind} handler for '${name}'`, { handler: name }),
      );
    }
    if (isStreamQuery(registration.definition)) return this.registry.refuse(useStream(name));
    // Per-key order: the call takes its place in its key's lane now, as it enters the bus (KeyOrder.ts).
    const placed =
      registration.ordering === undefined ? undefined : this.registry.place(registration, input, metadata);
    return this.registry.run(
      registration,
      name,
      input,
      metadata,
      signal,
      originThread,
      depth,
      placed,
      undefined,
      cancel,
    );
  }

  /**
   * A stream of a streaming query: nothing runs until its first `next()`, which starts the call (and is where
   * every refusal surfaces, as a rejection). `nested`: set for a handler's call (see `executeNested`), whose
   * metadata the caller merged already.
   */
  protected openStream(
    target: Definition | string,
    input: unknown,
    options: StreamOptions | undefined,
    nested?: { metadata: Metadata; originThread: number | undefined; depth: number },
  ): QueryStream {
    const name = targetName(target);
    const bad = options === undefined ? undefined : badStreamOptions(options);
    const refusal =
      bad === undefined ? undefined : new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name });
    const highWaterMark = bad === undefined ? highWaterMarkOf(options) : 1;
    const signal = bad === undefined ? options?.signal : undefined;
    const metadata = nested?.metadata ?? (bad === undefined ? options?.metadata : undefined) ?? noMetadata;
    return new QueryStream(
      (sink) => {
        if (refusal !== undefined) return this.registry.refuse(refusal);
        // A nested call is accepted while the bus drains, as in `executeNested`.
        if (nested === undefined ? this.registry.closed : this.registry.finished) {
          return this.registry.refuse(new CqrsError('CLOSED', `${name}: the bus is closed`));
        }
        if (typeof target === 'object' && target !== null) {
          if (target.kind !== this.kind) {
            return this.registry.refuse(
              new CqrsError('HANDLER_NOT_FOUND', `${name} is a ${target.kind}, not a query`, {
                handler: name,
              }),
            );
          }
          if (!isStreamQuery(target)) return this.registry.refuse(notStreaming(name));
        }
        const registration = this.handlers.get(name);
        if (registration === undefined) {
          return this.registry.refuse(
            new CqrsError('HANDLER_NOT_FOUND', `no ${this.kind} handler for '${name}'`, { handler: name }),
          );
        }
        if (!isStreamQuery(registration.definition)) return this.registry.refuse(notStreaming(name));
        const placed =
          registration.ordering === undefined
            ? undefined
            : this.registry.place(registration, input, metadata);
        return this.registry.run(
          registration,
          name,
          input,
          metadata,
          signal,
          nested?.originThread,
          nested?.depth ?? 0,
          placed,
          sink,
        );
      },
      highWaterMark,
      signal,
      name,
    );
  }

  /**
   * Loads every worker handler in the pool and checks its export, so a bad module or export is found before
   * traffic. Resolves when all load.
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` naming every handler that cannot be loaded; calls
   * to those fail with the same error. `CLOSED` when the bus or its pool is closed.
   */
  ready(): Promise<void> {
    return this.registry.ready();
  }

  /** Refuses new calls with `CLOSED`, waits until every call in flight has settled. Idempotent. Does not close the pool. */
  async close(): Promise<void> {
    await this.registry.close();
    this.registry.directory.detach(this);
  }

  /**
   * Executions, failures, in-flight calls and latency quantiles of this bus's handlers, summed over every
   * thread from shared memory (latencies in milliseconds). Exact: after N settled calls of which F failed,
   * `executions === N` and `failures === F`, whichever threads ran them. A call refused before its handler
   * ran (by middleware, overload or abort) counts as an execution and a failure.
   */
  getMetrics(): MetricsSnapshot {
    return this.registry.getMetrics();
  }

  /** The handler → slot mapping of this bus and its region, read by exporters on scrape. @internal */
  metricsSources(): MetricsSources {
    return this.registry.metricsSources();
  }

  /** True once {@link close} was called: new calls are refused with `CLOSED`. */
  get closed(): boolean {
    return this.registry.closed;
  }

  /** Calls accepted and not yet settled. */
  get pending(): number {
    return this.registry.pending;
  }

  /**
   * The key a call of `name` with this input would be ordered by: what its `orderingKey` returns, or
   * undefined when the handler has none (or the function returns undefined). For transports that keep the
   * order beyond this process (`@cqrs-pool/jetstream` partitions by it). Runs nothing, takes no place.
   * @throws CqrsError `HANDLER_NOT_FOUND` (no handler for `name`), `VALIDATION` (the function threw or
   * returned something else than a string or a number).
   * @internal
   */
  orderingKeyFor(name: string, input: unknown, metadata: Metadata = noMetadata): string | number | undefined {
    const registration = this.handlers.get(name);
    if (registration === undefined) {
      throw new CqrsError('HANDLER_NOT_FOUND', `no ${this.kind} handler for '${name}'`, { handler: name });
    }
    if (registration.ordering === undefined) return undefined;
    const key = callKey(registration.ordering, name, input, metadata);
    if (key instanceof CqrsError) throw key;
    return key;
  }

  protected registeredNames(): string[] {
    return [...this.handlers.keys()];
  }
}

function useStream(name: string): CqrsError {
  return new CqrsError(
    'INVALID_REGISTRATION',
    `${name} is a streaming query: read it with stream(), not execute()`,
    {
      handler: name,
    },
  );
}

function notStreaming(name: string): CqrsError {
  return new CqrsError(
    'INVALID_REGISTRATION',
    `${name} is not a streaming query (defineStreamQuery): run it with execute(), not stream()`,
    { handler: name },
  );
}

function targetName(target: Definition | string): string {
  return typeof target === 'string' ? target : String((target as Definition | null)?.name);
}

function checkDefinition(definition: Definition, kind: MessageKind): string {
  if (
    typeof definition !== 'object' ||
    definition === null ||
    typeof definition.name !== 'string' ||
    definition.name === ''
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `registerHandler: the definition must come from ${definerOf(kind)}() with a non-empty name`,
    );
  }
  if (definition.kind !== kind) {
    const where =
      definition.kind === 'event'
        ? 'subscribe to it on an EventBus'
        : `register it on a ${definition.kind} bus`;
    throw new CqrsError('INVALID_REGISTRATION', `${definition.name} is a ${definition.kind}; ${where}`, {
      handler: definition.name,
    });
  }
  return definition.name;
}
