import { CqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import { stripStacks } from '../errors/stripStacks.js';
import { badExecuteOptions } from '../handler/badExecuteOptions.js';
import type { ExecuteOptions, Metadata } from '../handler/HandlerContext.js';
import type { HandlerFn, WorkerHandler } from '../handler/handle.js';
import { isWorkerHandler } from '../handler/handle.js';
import type { Logger } from '../handler/Logger.js';
import { isLogger, noopLogger } from '../handler/Logger.js';
import type { Definition, InputOf, MessageKind, ResultOf } from '../messages/Definition.js';
import { compose } from '../middleware/compose.js';
import { failureCodesOf } from '../middleware/failureCodes.js';
import type { Call, ChainContext, Middleware, Next } from '../middleware/Middleware.js';
import { isMetricsPlacement } from '../middleware/metrics.js';
import { queryOnlyLabel } from '../middleware/queryOnly.js';
import type { NestedTarget } from '../pool/BusDirectory.js';
import { BusDirectory } from '../pool/BusDirectory.js';
import type { WorkerHandlerRef } from '../pool/inWorker.js';
import { isWorkerHandlerRef } from '../pool/inWorker.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import type { MetricsSnapshot } from '../shared/MetricsRegion.js';
import { MetricsRegion } from '../shared/MetricsRegion.js';
import { inlineTerminal } from './inlineTerminal.js';
import type { KeyOrderSink, OrderTicket } from './KeyOrder.js';
import { KeyOrder } from './KeyOrder.js';
import { OrderingTable } from './OrderingTable.js';
import { recordingLayer } from './recordingLayer.js';
import type { WorkerRoute } from './workerTerminal.js';
import { workerTerminal } from './workerTerminal.js';

/** Options of {@link CommandBus} and {@link QueryBus}. */
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

/** Options of `registerHandler`. */
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
 * Where a bus's handlers keep their figures in shared memory, for exporters reading them on scrape
 * (`@cqrs-pool/prometheus`) and `healthSnapshot`.
 * @internal
 */
export interface MetricsSources {
  readonly kind: MessageKind;
  /** The region the bus's slots live in; undefined until a registration needed one. */
  readonly region: MetricsRegion | undefined;
  /**
   * Every registered handler, in registration order. `slot` is its slot in `region` (-1 when it has none);
   * `recorded` tells whether its calls are counted there (false with `metrics: false`, where a breaker may
   * still keep its state in the slot).
   */
  readonly handlers: readonly {
    readonly name: string;
    readonly slot: number;
    readonly recorded: boolean;
    /** Registered with an `orderingKey`: its key-wait figures are kept in the slot's main block. */
    readonly ordered: boolean;
    /** Runs in the pool (`inWorker`): its calls' queue waits are kept in the slot's main block. */
    readonly pooled: boolean;
    /** A `circuitBreaker()` guards it: its transitions are counted on the slot's breaker line. */
    readonly breaker: boolean;
    /** The error codes its chain can fail a call with, from the middleware it has and where it runs. */
    readonly failureCodes: readonly ErrorCode[];
  }[];
}

/** What `registerHandler` accepts: an inline function, an `inWorker()` reference, or a `handle()` value run inline. */
export type HandlerFor<D extends Definition> = HandlerFn<D> | WorkerHandlerRef | WorkerHandler<D>;

interface Registration {
  readonly definition: Definition;
  readonly chain: Next;
  /** The handler's slot in the metrics region, or -1 when its calls are not recorded. */
  readonly metricsSlot: number;
  /**
   * `metricsSlot` when the recording is the outermost layer (the default): then `dispatch` does the layer's
   * work in the continuation it attaches anyway, which saves a promise per call. -1 otherwise.
   */
  readonly outermostSlot: number;
  /** No middleware: the terminal settles the call with the bus itself (see inlineTerminal.ts). */
  readonly direct: boolean;
  readonly worker: WorkerRoute | undefined;
  /** Per-key order: the key of a call and the lanes it waits in; undefined without `orderingKey`. */
  readonly ordering: Ordering | undefined;
  /** Set by `ready()` when the worker export cannot be loaded: calls fail with it at once. */
  broken: CqrsError | undefined;
  /**
   * How `dispatch` times the call's duration: 0 not at all (no metrics, or a direct registration — no
   * middleware — whose terminal times it, unless it is an inline one with a key), 1 sampled like inline
   * handlers' latency, 2 every call (worker handlers).
   */
  readonly callTiming: 0 | 1 | 2;
  /** Calls dispatched so far, to sample the timing of inline handlers' calls (see `dispatch`). */
  calls: number;
  /** The error codes the chain can fail a call with (see `failureCodesFor`). */
  readonly failureCodes: readonly ErrorCode[];
}

interface Ordering {
  readonly keyOf: (input: unknown, metadata: Metadata) => unknown;
  readonly order: KeyOrder;
  readonly sink: KeyOrderSink;
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;
const noMetadata: Metadata = Object.freeze({});
let nextBusId = 0;

/**
 * What both buses are: O(1) routing by name to a handler wrapped, once, in its middleware chain. The
 * subclasses only fix the kind.
 */
export abstract class Dispatcher<K extends MessageKind> implements NestedTarget {
  private readonly handlers = new Map<string, Registration>();
  private readonly busMiddleware: readonly Middleware[];
  private readonly pool: WorkerPool | undefined;
  private readonly directory: BusDirectory;
  private readonly metricsOn: boolean;
  /** `options.errorStacks`: false cuts the stacks of what calls reject with. */
  private readonly stacks: boolean;
  /** `options.logger`, or the no-op logger: the base of inline handlers' `ctx.logger`. */
  private readonly logger: Logger;
  /** Ordering groups and the count of calls waiting for their key: the pool's, shared by its buses, or the bus's own. */
  private readonly orderingTable: OrderingTable;
  /** Where this bus records: its pool's region, or its own; set at the first recorded registration. */
  private recorder: MetricsRegion | undefined;
  private state = OPEN;
  /** Tells buses apart in a shared region (a bus-wide slot is per bus, not per kind). */
  private readonly busId = nextBusId++;
  /** One call left: made once, not per call. */
  private readonly settled = (): void => {
    if (--this.inFlight === 0) this.drained?.();
  };
  /** {@link settled} for a failed call on a bus with `errorStacks: false`. */
  private readonly settledStripped = (err: unknown): void => {
    stripStacks(err);
    this.settled();
  };
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  protected constructor(
    readonly kind: K,
    options: BusOptions = {},
  ) {
    const busName = kind === 'command' ? 'CommandBus' : 'QueryBus';
    this.busMiddleware = checkMiddleware(options.middleware ?? [], `${busName}: options.middleware`, kind);
    this.pool = options.pool;
    if (options.metrics !== undefined && typeof options.metrics !== 'boolean') {
      throw new CqrsError('INVALID_REGISTRATION', `${busName}: options.metrics must be a boolean`);
    }
    this.metricsOn = options.metrics ?? true;
    if (options.errorStacks !== undefined && typeof options.errorStacks !== 'boolean') {
      throw new CqrsError('INVALID_REGISTRATION', `${busName}: options.errorStacks must be a boolean`);
    }
    this.stacks = options.errorStacks ?? true;
    if (options.logger !== undefined && !isLogger(options.logger)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${busName}: options.logger must be a pino-style logger (info, warn and error functions)`,
      );
    }
    this.logger = options.logger ?? noopLogger;
    this.directory = this.pool?.directory ?? new BusDirectory();
    this.orderingTable = this.pool?.ordering ?? new OrderingTable();
    this.directory.attach(this);
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
    if (this.state !== OPEN) throw new CqrsError('CLOSED', 'registerHandler: the bus is closed');
    const name = checkDefinition(definition, this.kind);
    if (this.handlers.has(name)) {
      throw new CqrsError('DUPLICATE_HANDLER', `${name}: a handler is already registered`, { handler: name });
    }
    const middleware = [
      ...this.busMiddleware,
      ...checkMiddleware(options.middleware ?? [], `${name}: options.middleware`, this.kind),
    ];
    const placement = middleware.findIndex(isMetricsPlacement);
    const { orderingKey, orderingGroup } = options;
    if (orderingKey !== undefined && typeof orderingKey !== 'function') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${name}: options.orderingKey must be a function (input, metadata) => string | number | undefined`,
        { handler: name },
      );
    }
    if (orderingGroup !== undefined && (typeof orderingGroup !== 'string' || orderingGroup === '')) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${name}: options.orderingGroup must be a non-empty string`,
        {
          handler: name,
        },
      );
    }
    if (orderingGroup !== undefined && orderingKey === undefined) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${name}: options.orderingGroup needs options.orderingKey`,
        {
          handler: name,
        },
      );
    }
    let inline: HandlerFn<Definition> | undefined;
    if (isWorkerHandlerRef(handler)) {
      if (this.pool === undefined) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `${name}: inWorker() handlers need a WorkerPool in the bus options`,
          { handler: name },
        );
      }
    } else if (isWorkerHandler(handler)) {
      if (handler.name !== name) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `${name}: this handle() value handles '${handler.name}'`,
          { handler: name },
        );
      }
      inline = handler.fn as HandlerFn<Definition>;
    } else if (typeof handler === 'function') {
      inline = handler as HandlerFn<Definition>;
    } else {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${name}: the handler must be a function, inWorker() or handle()`,
        { handler: name },
      );
    }
    // Everything that can refuse is checked above: from here on the registration takes shared resources.
    const region = this.metricsOn || placement >= 0 ? this.useRegion() : undefined;
    const metricsSlot = region === undefined ? -1 : this.allocateSlot(region, name);
    // With no middleware nothing can refuse a call before the handler: the terminal then owns it whole
    // (recording, settling, giving a keyed call's place up), and `dispatch` adds no continuation of its own.
    // The inline terminal without metrics leaves a keyed call's place to `dispatch`.
    const direct =
      middleware.length === 0 && (orderingKey === undefined || region !== undefined || inline === undefined);
    const ordering =
      orderingKey === undefined
        ? undefined
        : this.ordering(orderingKey as Ordering['keyOf'], orderingGroup, region, metricsSlot);
    const settled = direct ? this.settled : undefined;
    let terminal: Next;
    let worker: Registration['worker'];
    if (inline !== undefined) {
      terminal = inlineTerminal(name, inline, this.directory, this.logger, region, metricsSlot, settled);
    } else {
      const pool = this.pool as WorkerPool;
      const ref = handler as WorkerHandlerRef;
      worker = { moduleId: pool.registerModule(ref.moduleUrl), exportName: ref.exportName };
      const brokenBy = () => this.handlers.get(name)?.broken;
      terminal = workerTerminal(name, pool, worker, metricsSlot, brokenBy, settled);
    }
    if (region !== undefined && placement >= 0) middleware[placement] = recordingLayer(region, metricsSlot);
    const outermostSlot = region !== undefined && placement < 0 && !direct ? metricsSlot : -1;
    const chain = compose(middleware, terminal, this.chainContext(name, definition));
    this.handlers.set(name, {
      definition,
      chain,
      direct,
      metricsSlot,
      outermostSlot,
      worker,
      ordering,
      broken: undefined,
      callTiming:
        metricsSlot < 0 || (direct && (worker !== undefined || ordering === undefined))
          ? 0
          : worker !== undefined
            ? 2
            : 1,
      calls: 0,
      failureCodes: failureCodesFor(middleware, worker !== undefined, orderingKey !== undefined),
    });
  }

  /** The key function, lanes and wait reporting of a handler registered with `orderingKey`. */
  private ordering(
    keyOf: Ordering['keyOf'],
    group: string | undefined,
    region: MetricsRegion | undefined,
    slot: number,
  ): Ordering {
    const table = this.orderingTable;
    // A handler's own key space is a group nobody else can name.
    const order = group === undefined ? new KeyOrder() : table.group(group);
    const sink: KeyOrderSink = {
      startWaiting: () => {
        if (!table.startWaiting()) return false;
        if (slot >= 0) region?.addKeyWaiting(slot, 1);
        return true;
      },
      stopWaiting: () => {
        table.stopWaiting();
        if (slot >= 0) region?.addKeyWaiting(slot, -1);
      },
      granted: (waitedMs) => {
        if (slot >= 0) region?.recordKeyWait(slot, waitedMs * 1000);
      },
    };
    return { keyOf, order, sink };
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
    if (this.state !== OPEN) {
      return this.refuse(new CqrsError('CLOSED', `${targetName(target)}: the bus is closed`));
    }
    if (typeof target === 'object' && target !== null && target.kind !== this.kind) {
      return this.refuse(
        new CqrsError(
          'HANDLER_NOT_FOUND',
          `${target.name} is a ${target.kind}; execute it on a ${target.kind} bus`,
          {
            handler: target.name,
          },
        ),
      );
    }
    if (options !== undefined) {
      const bad = badExecuteOptions(options);
      if (bad !== undefined) {
        const name = targetName(target);
        return this.refuse(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
      }
    }
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
    if (this.state === CLOSED) return this.refuse(new CqrsError('CLOSED', `${name}: the bus is closed`));
    return this.dispatch(name, input, metadata, signal, originThread, depth);
  }

  private dispatch(
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    originThread: number | undefined,
    depth: number,
  ): Promise<unknown> {
    const registration = this.handlers.get(name);
    if (registration === undefined) {
      return this.refuse(
        new CqrsError('HANDLER_NOT_FOUND', `no ${this.kind} handler for '${name}'`, { handler: name }),
      );
    }
    const slot = registration.outermostSlot;
    const region = this.recorder as MetricsRegion;
    // The call's duration as its caller sees it, execute to settled. Two clock reads cost more than an inline
    // call's recording, so inline handlers' calls are timed as their latency is: all of the first 1024, then
    // one in 8. A pooled call is timed every time.
    const timing = registration.callTiming;
    const timedSlot =
      timing !== 0 && (timing === 2 || registration.calls++ < 1024 || (registration.calls & 7) === 0)
        ? registration.metricsSlot
        : -1;
    const calledAt = timedSlot >= 0 ? performance.now() : 0;
    // Per-key order: the call takes its place in its key's lane now, as it enters the bus (KeyOrder.ts).
    let order: OrderTicket | undefined;
    let refused: CqrsError | undefined;
    if (registration.ordering !== undefined) {
      const placed = this.place(registration.ordering, name, input, metadata);
      if (placed instanceof CqrsError) refused = placed;
      else order = placed;
    }
    const call: Call = {
      name,
      kind: this.kind,
      input,
      metadata,
      signal,
      definition: registration.definition,
      originThread,
      depth,
      cancelGraceMs: undefined,
      cancel: undefined,
      ticket: slot < 0 ? undefined : { claimed: false, settledBy: undefined },
      order,
    };
    if (slot >= 0) region.incrementInFlight(slot);
    // Counted before the chain runs: a direct terminal may settle the call synchronously.
    this.inFlight++;
    let pending: Promise<unknown>;
    if (refused !== undefined) {
      pending = Promise.reject(refused);
      // No terminal will count it: a direct registration's recording is done here.
      if (registration.direct) this.refusedDirect(registration, refused);
    } else {
      try {
        pending = registration.chain(call);
      } catch (err) {
        // A middleware that throws instead of rejecting must not escape as a synchronous throw.
        pending = Promise.reject(err);
        if (registration.direct) {
          order?.settle();
          this.settled();
        }
      }
    }
    // Stacks are cut in a reaction attached here, before the caller can attach its own, so the caller only
    // ever sees the cut error. With stacks kept (the default) this costs nothing.
    if (registration.direct) {
      if (!this.stacks) pending.then(undefined, stripStacks);
      if (timedSlot >= 0) timeCall(pending, region, timedSlot, calledAt);
      return pending;
    }
    const ticket = call.ticket;
    if (ticket === undefined) {
      if (timedSlot >= 0) timeCall(pending, region, timedSlot, calledAt);
      if (order === undefined) pending.then(this.settled, this.stacks ? this.settled : this.settledStripped);
      else {
        const release = (err?: unknown): void => {
          order.settle();
          if (err !== undefined && !this.stacks) stripStacks(err);
          this.settled();
        };
        pending.then(() => release(), release);
      }
      return pending;
    }
    // A middleware settled and counted the call already (a cache hit outermost in the chain): end it now.
    if (ticket.settledBy === pending) {
      if (timedSlot >= 0) region.recordCallDuration(timedSlot, (performance.now() - calledAt) * 1000);
      region.decrementInFlight(slot);
      order?.settle();
      this.settled();
      return pending;
    }
    // The outermost metrics layer, folded in here: in flight −1, and count what no handler counted
    // (refusals, aborts, crashes) — see recordingLayer.ts for the same logic as a placeable layer. A keyed
    // call gives its place up here too.
    const settle = (failed: boolean, err?: unknown): void => {
      if (timedSlot >= 0) region.recordCallDuration(timedSlot, (performance.now() - calledAt) * 1000);
      region.decrementInFlight(slot);
      if (!ticket.claimed) {
        ticket.claimed = true;
        region.recordCount(slot, failed);
        if (failed) region.recordFailureCode(slot, err);
      }
      order?.settle();
      this.settled();
    };
    pending.then(
      () => settle(false),
      (err: unknown) => {
        if (!this.stacks) stripStacks(err);
        settle(true, err);
      },
    );
    return pending;
  }

  /**
   * The place of a keyed call in its lane: its ticket, undefined for a call without a key, or the error that
   * refuses it (a key function that throws or returns something else than a string or a number; no room to
   * wait in the pool's queue).
   */
  private place(
    ordering: Ordering,
    name: string,
    input: unknown,
    metadata: Metadata,
  ): OrderTicket | CqrsError | undefined {
    let key: unknown;
    try {
      key = ordering.keyOf(input, metadata);
    } catch (err) {
      return new CqrsError('VALIDATION', `${name}: orderingKey threw: ${errorText(err)}`, {
        cause: err,
        handler: name,
      });
    }
    if (key === undefined) return undefined;
    if (typeof key !== 'string' && typeof key !== 'number') {
      return new CqrsError(
        'VALIDATION',
        `${name}: orderingKey must return a string, a number or undefined, got ${typeof key}`,
        { handler: name },
      );
    }
    const ticket = ordering.order.enter(key, ordering.sink);
    if (ticket !== undefined) return ticket;
    return new CqrsError('OVERLOADED', `${name}: the pool's queue is full (calls waiting for their key)`, {
      handler: name,
    });
  }

  /** A keyed call of a direct registration refused before its terminal (see `place`): counted here. */
  private refusedDirect(registration: Registration, err: CqrsError): void {
    const region = this.recorder;
    if (region !== undefined && registration.metricsSlot >= 0) {
      region.recordCount(registration.metricsSlot, true);
      region.recordFailureCode(registration.metricsSlot, err);
    }
    this.settled();
  }

  /** A call refused before any chain ran: rejected at once, its stack cut when the bus hides stacks. */
  private refuse(err: CqrsError): Promise<never> {
    return Promise.reject(this.stacks ? err : stripStacks(err));
  }

  /**
   * Loads every worker handler in the pool and checks its export, so a bad module or export is found before
   * traffic. Resolves when all load.
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` naming every handler that cannot be loaded; calls
   * to those fail with the same error. `CLOSED` when the bus or its pool is closed.
   */
  async ready(): Promise<void> {
    const pool = this.pool;
    if (this.state !== OPEN || pool?.closed === true) {
      const err = new CqrsError(
        'CLOSED',
        `ready(): the ${this.state !== OPEN ? 'bus' : 'worker pool'} is closed`,
      );
      throw this.stacks ? err : stripStacks(err);
    }
    if (pool === undefined) return;
    const failures: string[] = [];
    const causes: unknown[] = [];
    await Promise.all(
      [...this.handlers].map(async ([name, registration]) => {
        if (registration.worker === undefined) return;
        try {
          await pool.probe(registration.worker.moduleId, registration.worker.exportName, name);
          registration.broken = undefined;
        } catch (err) {
          registration.broken = err as CqrsError;
          failures.push((err as Error).message);
          causes.push(err);
        }
      }),
    );
    if (failures.length > 0) {
      const err = new CqrsError(
        'INVALID_REGISTRATION',
        `cannot load ${failures.length} worker handler(s): ${failures.join('; ')}`,
        {
          cause: causes.length === 1 ? causes[0] : new AggregateError(causes),
        },
      );
      throw this.stacks ? err : stripStacks(err);
    }
  }

  /** Refuses new calls with `CLOSED`, waits until every call in flight has settled. Idempotent. Does not close the pool. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = CLOSING;
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.state = CLOSED;
      this.directory.detach(this);
    })();
    return this.closing;
  }

  /**
   * Executions, failures, in-flight calls and latency quantiles of this bus's handlers, summed over every
   * thread from shared memory (latencies in milliseconds). Exact: after N settled calls of which F failed,
   * `executions === N` and `failures === F`, whichever threads ran them. A call refused before its handler
   * ran (by middleware, overload or abort) counts as an execution and a failure.
   */
  getMetrics(): MetricsSnapshot {
    const entries: [string, number][] = [];
    for (const [name, registration] of this.handlers) {
      if (registration.metricsSlot >= 0) entries.push([name, registration.metricsSlot]);
    }
    const region = this.recorder;
    if (region === undefined) return { executions: 0, failures: 0, inFlight: 0, handlers: {} };
    const snapshot = region.snapshotOf(entries);
    for (const [name, registration] of this.handlers) {
      const figures = snapshot.handlers[name];
      if (registration.ordering !== undefined && figures !== undefined) {
        figures.ordering = region.orderingMetrics(registration.metricsSlot);
      }
    }
    return snapshot;
  }

  /** The handler → slot mapping of this bus and its region, read by exporters on scrape. @internal */
  metricsSources(): MetricsSources {
    const region = this.recorder;
    const handlers = [...this.handlers].map(([name, registration]) => {
      const recorded = registration.metricsSlot >= 0;
      const slot = recorded ? registration.metricsSlot : (region?.slotOf(`${this.kind}:${name}`) ?? -1);
      return {
        name,
        slot,
        recorded,
        ordered: registration.ordering !== undefined,
        pooled: registration.worker !== undefined,
        breaker: registration.failureCodes.includes('CIRCUIT_OPEN'),
        failureCodes: registration.failureCodes,
      };
    });
    return { kind: this.kind, region, handlers };
  }

  /** True once {@link close} was called: new calls are refused with `CLOSED`. */
  get closed(): boolean {
    return this.state !== OPEN;
  }

  /** The region this bus records into: its pool's (shared with the threads), or its own. */
  private useRegion(): MetricsRegion {
    // No thread writes a pool-less bus's region: one stripe besides the main thread's is the minimum.
    this.recorder ??= this.pool?.metrics ?? new MetricsRegion({ threadStripes: 1 });
    return this.recorder;
  }

  /** What a middleware learns of the handler it wraps, with lazy access to its shared-memory slots. */
  private chainContext(name: string, definition: Definition): ChainContext {
    const bus = this;
    return {
      name,
      kind: this.kind,
      definition,
      shared: {
        get region() {
          return bus.useRegion();
        },
        handlerSlot: () => this.allocateSlot(this.useRegion(), name),
        busSlot: () => this.allocateSlot(this.useRegion(), '*', `bus#${this.busId}`),
      },
    };
  }

  private allocateSlot(region: MetricsRegion, name: string, key = `${this.kind}:${name}`): number {
    try {
      // Keyed by kind too: a command and a query may share a name, and both buses may share a region.
      return region.allocate(key);
    } catch (err) {
      throw new CqrsError('INVALID_REGISTRATION', `${name}: ${(err as Error).message}`, {
        cause: err,
        handler: name,
      });
    }
  }

  /** Calls accepted and not yet settled. */
  get pending(): number {
    return this.inFlight;
  }

  protected registeredNames(): string[] {
    return [...this.handlers.keys()];
  }
}

/** Records the duration of a call, from `calledAt` (a `performance.now()` reading) to when `pending` settles. */
function timeCall(pending: Promise<unknown>, region: MetricsRegion, slot: number, calledAt: number): void {
  const record = (): void => region.recordCallDuration(slot, (performance.now() - calledAt) * 1000);
  pending.then(record, record);
}

/**
 * The error codes a handler's chain can fail a call with: those its built-in middleware refuse with (the
 * breaker's `CIRCUIT_OPEN`, …), those of the pool for a worker handler, those of per-key order, and the two
 * any call can end with. A custom middleware's codes are not known until they occur.
 */
function failureCodesFor(middleware: readonly Middleware[], pooled: boolean, ordered: boolean): ErrorCode[] {
  const codes = new Set<ErrorCode>(['HANDLER_FAILED', 'ABORTED']);
  for (const m of middleware) for (const code of failureCodesOf(m)) codes.add(code);
  if (pooled) for (const code of ['WORKER_CRASHED', 'NOT_CLONEABLE', 'OVERLOADED'] as const) codes.add(code);
  // A key function that throws refuses with VALIDATION; no room to wait for the key, with OVERLOADED.
  if (ordered) for (const code of ['VALIDATION', 'OVERLOADED'] as const) codes.add(code);
  return [...codes];
}

function errorText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'an unreadable error';
  }
}

function targetName(target: Definition | string): string {
  return typeof target === 'string' ? target : String((target as Definition | null)?.name);
}

function checkDefinition(definition: Definition, kind: MessageKind): string {
  const what = kind === 'command' ? 'defineCommand' : 'defineQuery';
  if (
    typeof definition !== 'object' ||
    definition === null ||
    typeof definition.name !== 'string' ||
    definition.name === ''
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `registerHandler: the definition must come from ${what}() with a non-empty name`,
    );
  }
  if (definition.kind !== kind) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${definition.name} is a ${definition.kind}; register it on a ${definition.kind} bus`,
      {
        handler: definition.name,
      },
    );
  }
  return definition.name;
}

function checkMiddleware(
  list: readonly Middleware[],
  where: string,
  kind: MessageKind,
): readonly Middleware[] {
  if (!Array.isArray(list) || list.some((m) => typeof m !== 'function')) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where} must be an array of (next) => (call) => Promise functions`,
    );
  }
  if (kind === 'command') {
    const label = list.map(queryOnlyLabel).find((l) => l !== undefined);
    if (label !== undefined) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${where}: ${label} applies to queries only, not to commands`,
      );
    }
  }
  return [...list];
}
