export type { BusOptions, HandlerFor, RegisterOptions } from './busOptions.js';

import { CqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import { stripStacks } from '../errors/stripStacks.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { HandlerFn } from '../handler/handle.js';
import { isWorkerHandler } from '../handler/handle.js';
import type { Logger } from '../handler/Logger.js';
import { isLogger, noopLogger } from '../handler/Logger.js';
import type { Definition, MessageKind } from '../messages/Definition.js';
import { isStreamQuery } from '../messages/defineStreamQuery.js';
import { compose } from '../middleware/compose.js';
import { failureCodesOf } from '../middleware/failureCodes.js';
import type { Call, CallTicket, ChainContext, Middleware, Next } from '../middleware/Middleware.js';
import { isMetricsPlacement } from '../middleware/metrics.js';
import { queryOnlyLabel } from '../middleware/queryOnly.js';
import { BusDirectory } from '../pool/BusDirectory.js';
import type { WorkerHandlerRef } from '../pool/inWorker.js';
import { isWorkerHandlerRef } from '../pool/inWorker.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import type { MetricsSnapshot } from '../shared/MetricsRegion.js';
import { MetricsRegion } from '../shared/MetricsRegion.js';
import type { CancelToken } from '../util/CancelToken.js';
import type { BusOptions, HandlerFor, RegisterOptions } from './busOptions.js';
import { inlineStreamTerminal } from './inlineStreamTerminal.js';
import { inlineTerminal } from './inlineTerminal.js';
import type { OrderTicket } from './KeyOrder.js';
import type { Ordering } from './keyOrdering.js';
import { keyOrdering, placeCall } from './keyOrdering.js';
import { timesCall } from './latencySampling.js';
import { OrderingTable } from './OrderingTable.js';
import { recordingLayer } from './recordingLayer.js';
import type { StreamSink } from './StreamSink.js';
import { workerStreamTerminal } from './workerStreamTerminal.js';
import type { WorkerRoute } from './workerTerminal.js';
import { workerTerminal } from './workerTerminal.js';

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
   * still keep its state in the slot). An event subscriber's `name` is `<event>:<subscriber>`, `message`
   * its event and `subscriber` its name; both are absent for commands and queries.
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
    readonly message?: string;
    readonly subscriber?: string;
  }[];
}

/** One handler wrapped in its chain: what a bus routes a call to. @internal */
export interface Registration {
  /** The handler's name in metrics and errors: the message's name, or `<event>:<subscriber>`. */
  readonly key: string;
  readonly definition: Definition;
  /** The event subscriber's name; undefined for commands and queries. */
  readonly subscriber: string | undefined;
  readonly chain: Next;
  /** The handler's slot in the metrics region, or -1 when its calls are not recorded. */
  readonly metricsSlot: number;
  /**
   * `metricsSlot` when the recording is the outermost layer (the default): then `run` does the layer's
   * work in the continuation it attaches anyway, which saves a promise per call. -1 otherwise.
   */
  readonly outermostSlot: number;
  /** No middleware: the terminal settles the call with the registry itself (see inlineTerminal.ts). */
  readonly direct: boolean;
  /**
   * A direct inline registration without `orderingKey`: its terminal's `now` (see inlineTerminal.ts), which
   * {@link ChainRegistry.deliver} calls instead of the chain. Undefined otherwise.
   */
  readonly now: ((call: Call) => Promise<unknown> | undefined) | undefined;
  readonly worker: WorkerRoute | undefined;
  /** Per-key order: the key of a call and the lanes it waits in; undefined without `orderingKey`. */
  readonly ordering: Ordering | undefined;
  /** Set by `ready()` when the worker export cannot be loaded: calls fail with it at once. */
  broken: CqrsError | undefined;
  /**
   * How `run` times the call's duration: 0 not at all (no metrics, or a direct registration — no
   * middleware — whose terminal times it, unless it is an inline one with a key), 1 sampled like inline
   * handlers' latency, 2 every call (worker handlers).
   */
  readonly callTiming: 0 | 1 | 2;
  /** Calls run so far, to sample the timing of inline handlers' calls (see `run`). */
  calls: number;
  /** The error codes the chain can fail a call with (see `failureCodesFor`). */
  readonly failureCodes: readonly ErrorCode[];
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;
let nextBusId = 0;

/**
 * What every bus is made of: handlers registered once — definition and options checked, the middleware
 * chain composed around an inline or worker terminal with the shared-memory recording, per-key order set
 * up — and the calls in flight through them, counted so `close()` can drain. A command or query bus routes
 * a name to one registration; the event bus fans a publish out to the registrations of its subscribers.
 * @internal
 */
export class ChainRegistry {
  /** Every registration, in registration order (for `ready()` and the metrics). */
  readonly registrations: Registration[] = [];
  readonly pool: WorkerPool | undefined;
  readonly directory: BusDirectory;
  /** `options.errorStacks`: false cuts the stacks of what calls reject with. */
  readonly stacks: boolean;
  private readonly busMiddleware: readonly Middleware[];
  private readonly metricsOn: boolean;
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

  /** @param owner the bus's class name, for messages. */
  constructor(
    readonly owner: string,
    readonly kind: MessageKind,
    options: BusOptions,
  ) {
    this.busMiddleware = checkMiddleware(options.middleware ?? [], `${owner}: options.middleware`, kind);
    this.pool = options.pool;
    if (options.metrics !== undefined && typeof options.metrics !== 'boolean') {
      throw new CqrsError('INVALID_REGISTRATION', `${owner}: options.metrics must be a boolean`);
    }
    this.metricsOn = options.metrics ?? true;
    if (options.errorStacks !== undefined && typeof options.errorStacks !== 'boolean') {
      throw new CqrsError('INVALID_REGISTRATION', `${owner}: options.errorStacks must be a boolean`);
    }
    this.stacks = options.errorStacks ?? true;
    if (options.logger !== undefined && !isLogger(options.logger)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${owner}: options.logger must be a pino-style logger (info, warn and error functions)`,
      );
    }
    this.logger = options.logger ?? noopLogger;
    this.directory = this.pool?.directory ?? new BusDirectory();
    this.orderingTable = this.pool?.ordering ?? new OrderingTable();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.state !== OPEN;
  }

  /** True once `close()` has drained every call. */
  get finished(): boolean {
    return this.state === CLOSED;
  }

  /** Calls accepted and not yet settled. */
  get pending(): number {
    return this.inFlight;
  }

  /**
   * Wraps `handler` in its chain under `key` (the definition's name, or `<event>:<subscriber>`). The caller
   * has checked the definition, the bus's state and that `key` is free.
   * @throws CqrsError `INVALID_REGISTRATION` (bad middleware or options, missing handler, worker handler
   * without a pool, a `handle()` value of another message, a full metrics region).
   */
  register(
    key: string,
    definition: Definition,
    handler: HandlerFor<Definition>,
    options: RegisterOptions,
    subscriber?: string,
  ): Registration {
    const name = definition.name;
    const middleware = [
      ...this.busMiddleware,
      ...checkMiddleware(options.middleware ?? [], `${key}: options.middleware`, this.kind),
    ];
    const placement = middleware.findIndex(isMetricsPlacement);
    const { orderingKey, orderingGroup } = options;
    if (orderingKey !== undefined && typeof orderingKey !== 'function') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${key}: options.orderingKey must be a function (input, metadata) => string | number | undefined`,
        { handler: key },
      );
    }
    if (orderingGroup !== undefined && (typeof orderingGroup !== 'string' || orderingGroup === '')) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${key}: options.orderingGroup must be a non-empty string`,
        {
          handler: key,
        },
      );
    }
    if (orderingGroup !== undefined && orderingKey === undefined) {
      throw new CqrsError('INVALID_REGISTRATION', `${key}: options.orderingGroup needs options.orderingKey`, {
        handler: key,
      });
    }
    let inline: HandlerFn<Definition> | undefined;
    if (isWorkerHandlerRef(handler)) {
      if (this.pool === undefined) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `${key}: inWorker() handlers need a WorkerPool in the bus options`,
          { handler: key },
        );
      }
    } else if (isWorkerHandler(handler)) {
      if (handler.name !== name) {
        throw new CqrsError('INVALID_REGISTRATION', `${key}: this handle() value handles '${handler.name}'`, {
          handler: key,
        });
      }
      inline = handler.fn as HandlerFn<Definition>;
    } else if (typeof handler === 'function') {
      inline = handler as HandlerFn<Definition>;
    } else {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${key}: the handler must be a function, inWorker() or handle()`,
        { handler: key },
      );
    }
    // Everything that can refuse is checked above: from here on the registration takes shared resources.
    const region = this.metricsOn || placement >= 0 ? this.useRegion() : undefined;
    const metricsSlot = region === undefined ? -1 : this.allocateSlot(region, key);
    // With no middleware nothing can refuse a call before the handler: the terminal then owns it whole
    // (recording, settling, giving a keyed call's place up), and `run` adds no continuation of its own.
    // The inline terminal without metrics leaves a keyed call's place to `run`.
    // A stream's call is always ended by `run`: its terminals do not own it (see inlineStreamTerminal.ts).
    const streaming = isStreamQuery(definition);
    const direct =
      !streaming &&
      middleware.length === 0 &&
      (orderingKey === undefined || region !== undefined || inline === undefined);
    const ordering =
      orderingKey === undefined
        ? undefined
        : keyOrdering(
            this.orderingTable,
            orderingKey as Ordering['keyOf'],
            orderingGroup,
            region,
            metricsSlot,
          );
    const settled = direct ? this.settled : undefined;
    let terminal: Next;
    let now: Registration['now'];
    let worker: WorkerRoute | undefined;
    // Assigned below, read by the worker terminal at call time (`ready()` may mark it broken).
    let registration: Registration | undefined;
    if (streaming) {
      if (inline !== undefined) {
        terminal = inlineStreamTerminal(key, inline, this.directory, this.logger, region, metricsSlot);
      } else {
        const pool = this.pool as WorkerPool;
        const ref = handler as WorkerHandlerRef;
        worker = { moduleId: pool.registerModule(ref.moduleUrl), exportName: ref.exportName };
        const route = { ...worker, message: name, subscriber };
        terminal = workerStreamTerminal(key, pool, route, metricsSlot, () => registration?.broken);
      }
    } else if (inline !== undefined) {
      const made = inlineTerminal(
        key,
        inline,
        this.directory,
        this.logger,
        region,
        metricsSlot,
        settled,
        subscriber,
      );
      terminal = made.next;
      if (ordering === undefined) now = made.now;
    } else {
      const pool = this.pool as WorkerPool;
      const ref = handler as WorkerHandlerRef;
      worker = { moduleId: pool.registerModule(ref.moduleUrl), exportName: ref.exportName };
      const route = { ...worker, message: name, subscriber };
      terminal = workerTerminal(key, pool, route, metricsSlot, () => registration?.broken, settled);
    }
    if (region !== undefined && placement >= 0) middleware[placement] = recordingLayer(region, metricsSlot);
    const outermostSlot = region !== undefined && placement < 0 && !direct ? metricsSlot : -1;
    const chain = compose(middleware, terminal, this.chainContext(key, definition, subscriber));
    registration = {
      key,
      definition,
      subscriber,
      chain,
      direct,
      now,
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
    };
    this.registrations.push(registration);
    return registration;
  }

  /**
   * Runs one call of `registration` through its chain: `name` is the message's name (`call.name`), `placed`
   * the call's place in its key's lane from {@link place} (undefined for a registration without
   * `orderingKey`, or a call without a key). Counts the call in flight until it settles. `stream`: the
   * buffer of a `stream()` call, which settles when the stream ends. `cancel`: a token that aborts the call
   * as `signal` would (see Dispatcher.executeCancellable).
   */
  run(
    registration: Registration,
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    originThread: number | undefined,
    depth: number,
    placed: OrderTicket | CqrsError | undefined,
    stream?: StreamSink,
    cancel?: CancelToken,
  ): Promise<unknown> {
    const slot = registration.outermostSlot;
    const region = this.recorder as MetricsRegion;
    // The call's duration as its caller sees it, execute to settled. Inline handlers' calls are sampled as
    // their latency is (latencySampling.ts); a pooled call is timed every time.
    const timing = registration.callTiming;
    const timedSlot =
      timing !== 0 && (timing === 2 || timesCall(registration.calls++)) ? registration.metricsSlot : -1;
    const calledAt = timedSlot >= 0 ? performance.now() : 0;
    let order: OrderTicket | undefined;
    let refused: CqrsError | undefined;
    if (placed !== undefined) {
      if (placed instanceof CqrsError) refused = placed;
      else order = placed;
    }
    const call = callOf(
      this.kind,
      registration,
      name,
      input,
      metadata,
      signal,
      originThread,
      depth,
      slot < 0
        ? undefined
        : new ChainSettlement(this.settled, this.stacks, region, slot, timedSlot, calledAt, order),
      order,
      stream,
      cancel,
    );
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
    // The outermost metrics layer, folded in here (ChainSettlement): it ends the call when its chain settles.
    const settlement = ticket as ChainSettlement;
    pending.then(
      () => settlement.end(false, undefined),
      (err: unknown) => settlement.end(true, err),
    );
    return pending;
  }

  /**
   * Runs one call of `registration` for an event's fan-out, which has no use for the handler's value: as
   * {@link run} does, but when the registration has a `now` terminal and its handler answers synchronously,
   * the call is counted and settled there and then and this returns undefined instead of a resolved promise.
   */
  deliver(
    registration: Registration,
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    originThread: number | undefined,
    depth: number,
    placed: OrderTicket | CqrsError | undefined,
  ): Promise<unknown> | undefined {
    const now = registration.now;
    if (now === undefined) {
      return this.run(registration, name, input, metadata, signal, originThread, depth, placed);
    }
    // What `run` does for a direct registration that has no key and whose calls it does not time: the
    // terminal owns the call (its recording, and telling this registry it settled).
    const call = callOf(
      this.kind,
      registration,
      name,
      input,
      metadata,
      signal,
      originThread,
      depth,
      undefined,
      undefined,
      undefined,
    );
    this.inFlight++;
    let pending: Promise<unknown> | undefined;
    try {
      pending = now(call);
    } catch (err) {
      pending = Promise.reject(err);
      this.settled();
    }
    if (pending !== undefined && !this.stacks) pending.then(undefined, stripStacks);
    return pending;
  }

  /**
   * The place of a keyed call in its lane, taken as the call enters the bus (KeyOrder.ts): its ticket,
   * undefined for a call without a key, or the error that refuses it.
   */
  place(registration: Registration, input: unknown, metadata: Metadata): OrderTicket | CqrsError | undefined {
    const ordering = registration.ordering;
    return ordering === undefined ? undefined : placeCall(ordering, registration.key, input, metadata);
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
  refuse(err: CqrsError): Promise<never> {
    return Promise.reject(this.stacks ? err : stripStacks(err));
  }

  /**
   * Loads every worker handler in the pool and checks its export. Resolves when all load.
   * @throws CqrsError `INVALID_REGISTRATION` naming every handler that cannot be loaded (calls to those
   * fail with the same error); `CLOSED` when the bus or its pool is closed.
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
    // In registration order, whichever probe answers first.
    const outcomes = await Promise.all(
      this.registrations.map(async (registration): Promise<CqrsError | undefined> => {
        if (registration.worker === undefined) return undefined;
        try {
          const { moduleId, exportName } = registration.worker;
          await pool.probe(moduleId, exportName, registration.definition.name, registration.key);
          registration.broken = undefined;
          return undefined;
        } catch (err) {
          registration.broken = err as CqrsError;
          return err as CqrsError;
        }
      }),
    );
    const causes = outcomes.filter((err) => err !== undefined);
    const failures = causes.map((err) => err.message);
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

  /** Refuses new calls (the bus checks `closed`), waits until every call in flight has settled. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = CLOSING;
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.state = CLOSED;
    })();
    return this.closing;
  }

  /** The metrics snapshot of every registration, each under its key. */
  getMetrics(): MetricsSnapshot {
    const region = this.recorder;
    if (region === undefined) return { executions: 0, failures: 0, inFlight: 0, handlers: {} };
    const recorded = this.registrations.filter((r) => r.metricsSlot >= 0);
    const snapshot = region.snapshotOf(recorded.map((r) => [r.key, r.metricsSlot] as const));
    for (const registration of recorded) {
      const figures = snapshot.handlers[registration.key];
      if (registration.ordering !== undefined && figures !== undefined) {
        figures.ordering = region.orderingMetrics(registration.metricsSlot);
      }
      if (figures !== undefined && isStreamQuery(registration.definition)) {
        figures.stream = region.streamMetrics(registration.metricsSlot);
      }
    }
    return snapshot;
  }

  /** The handler → slot mapping of this bus and its region, read by exporters on scrape. */
  metricsSources(): MetricsSources {
    const region = this.recorder;
    const handlers = this.registrations.map((registration) => {
      const name = registration.key;
      const recorded = registration.metricsSlot >= 0;
      const slot = recorded ? registration.metricsSlot : (region?.slotOf(`${this.kind}:${name}`) ?? -1);
      const subscriber = registration.subscriber;
      const figures = {
        name,
        slot,
        recorded,
        ordered: registration.ordering !== undefined,
        pooled: registration.worker !== undefined,
        breaker: registration.failureCodes.includes('CIRCUIT_OPEN'),
        failureCodes: registration.failureCodes,
      };
      return subscriber === undefined
        ? figures
        : { ...figures, message: registration.definition.name, subscriber };
    });
    return { kind: this.kind, region, handlers };
  }

  /** The region this bus records into: its pool's (shared with the threads), or its own. */
  private useRegion(): MetricsRegion {
    // No thread writes a pool-less bus's region: one stripe besides the main thread's is the minimum.
    this.recorder ??= this.pool?.metrics ?? new MetricsRegion({ threadStripes: 1 });
    return this.recorder;
  }

  /** What a middleware learns of the handler it wraps, with lazy access to its shared-memory slots. */
  private chainContext(key: string, definition: Definition, subscriber: string | undefined): ChainContext {
    const registry = this;
    const shared = {
      get region() {
        return registry.useRegion();
      },
      handlerSlot: () => this.allocateSlot(this.useRegion(), key),
      busSlot: () => this.allocateSlot(this.useRegion(), '*', `bus#${this.busId}`),
    };
    return subscriber === undefined
      ? { name: key, kind: this.kind, definition, shared }
      : { name: key, kind: this.kind, definition, shared, subscriber };
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
  if (kind !== 'query') {
    const label = list.map(queryOnlyLabel).find((l) => l !== undefined);
    if (label !== undefined) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${where}: ${label} applies to queries only, not to ${kind === 'command' ? 'commands' : 'events'}`,
      );
    }
  }
  return [...list];
}

/** A call through a registration's chain; made in one place, so every terminal sees one shape of object. */
function callOf(
  kind: MessageKind,
  registration: Registration,
  name: string,
  input: unknown,
  metadata: Metadata,
  signal: AbortSignal | undefined,
  originThread: number | undefined,
  depth: number,
  ticket: Call['ticket'],
  order: OrderTicket | undefined,
  stream: StreamSink | undefined,
  cancel: CancelToken | undefined = undefined,
): Call {
  return {
    name,
    kind,
    input,
    metadata,
    signal,
    definition: registration.definition,
    originThread,
    depth,
    cancelGraceMs: undefined,
    cancel,
    ticket,
    order,
    stream,
  };
}

/**
 * The outermost metrics layer of a call through a chain with middleware (see recordingLayer.ts for the same
 * logic as a placeable layer), one object per call: the ticket the handler's terminal claims when it counts
 * the attempt, and what ends the call when its chain settles — in flight −1, the count of what no handler
 * counted (refusals, aborts, crashes), the call's duration, a keyed call's place given up.
 */
class ChainSettlement implements CallTicket {
  claimed = false;
  settledBy: Promise<unknown> | undefined = undefined;

  constructor(
    /** Tells the registry the call settled. */
    private readonly settled: () => void,
    /** The bus keeps errors' stacks (`errorStacks`). */
    private readonly stacks: boolean,
    private readonly region: MetricsRegion,
    private readonly slot: number,
    /** Where the call's duration is recorded, or -1 when this call is not timed. */
    private readonly timedSlot: number,
    private readonly calledAt: number,
    private readonly order: OrderTicket | undefined,
  ) {}

  end(failed: boolean, err: unknown): void {
    if (failed && !this.stacks) stripStacks(err);
    const region = this.region;
    if (this.timedSlot >= 0) {
      region.recordCallDuration(this.timedSlot, (performance.now() - this.calledAt) * 1000);
    }
    region.decrementInFlight(this.slot);
    if (!this.claimed) {
      this.claimed = true;
      region.recordCount(this.slot, failed);
      if (failed) region.recordFailureCode(this.slot, err);
    }
    this.order?.settle();
    this.settled();
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
