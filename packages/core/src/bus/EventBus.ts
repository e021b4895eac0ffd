import { CqrsError } from '../errors/CqrsError.js';
import { stripStacks } from '../errors/stripStacks.js';
import { badPublishOptions } from '../handler/badExecuteOptions.js';
import type { PublishOptions, PublishReport, PublishStrategy } from '../handler/EventClient.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { Logger } from '../handler/Logger.js';
import type { EventDefinition, ParsedPayloadOf, PayloadOf } from '../messages/Definition.js';
import type { Middleware } from '../middleware/Middleware.js';
import { invalid, parseValue } from '../middleware/validation.js';
import type { NestedPublisher } from '../pool/BusDirectory.js';
import type { MetricsSnapshot } from '../shared/MetricsRegion.js';
import type { BusOptions, HandlerFor, MetricsSources, RegisterOptions } from './ChainRegistry.js';
import { ChainRegistry } from './ChainRegistry.js';
import type { FanOutSink, Topic } from './fanOut.js';
import { fanOut } from './fanOut.js';

/** A subscriber that failed, as {@link EventBusOptions.onFailure} receives it: enough to retry it later. */
export interface EventFailure {
  readonly event: string;
  readonly subscriber: string;
  /** What its chain ended with, after its own `retry()` (if any) gave up. */
  readonly error: CqrsError;
  /** The payload as the subscriber received it (parsed by the event's schema). */
  readonly payload: unknown;
  readonly metadata: Metadata;
}

/** Options of {@link EventBus}: those of the other buses, and what a publish does with failures. */
export interface EventBusOptions extends BusOptions {
  /**
   * Called once for every subscriber that failed a publish (a dead-letter list, an alert), on the main
   * thread, whichever thread ran it. `publish` resolves after the promise it returns (if any) settles. What
   * it throws or rejects with is logged (the bus's `logger`, else a process warning) and changes nothing.
   */
  onFailure?: (failure: EventFailure) => void | Promise<void>;
  /** How `publish` runs the subscribers unless told otherwise. Default `'parallel'`. */
  strategy?: PublishStrategy;
}

/** Options of {@link EventBus.subscribe}. */
export interface SubscribeOptions<D extends EventDefinition = EventDefinition> {
  /** Applied to this subscriber only, inside the bus-wide middleware (its own `retry()`, `timeout()`…). */
  middleware?: readonly Middleware[];
  /**
   * Per-key order for this subscriber: its calls whose payloads give an equal key start in publish order and
   * never overlap (see `RegisterOptions.orderingKey`); computed from the parsed payload.
   */
  orderingKey?: (payload: ParsedPayloadOf<D>, metadata: Metadata) => string | number | undefined;
  /** Shares the keys with every handler and subscriber of the pool registered with the same group. */
  orderingGroup?: string;
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;
const noMetadata: Metadata = Object.freeze({});

/**
 * The event bus: `publish` hands an event to every subscriber, each one a handler registration like a
 * command's — its own middleware chain, metrics slot, per-key order, inline or in the pool — and waits for
 * all of them. A subscriber's failure is isolated: the others run, and the failure is reported (in the
 * publish's report and to `onFailure`), never thrown.
 */
export class EventBus implements NestedPublisher {
  private readonly registry: ChainRegistry;
  private readonly topics = new Map<string, Topic>();
  private readonly onFailure: EventBusOptions['onFailure'];
  private readonly strategy: PublishStrategy;
  private readonly logger: Logger | undefined;
  private state = OPEN;
  /** What fanOut reports to: failures to `onFailure`, the end of each publish to the drain count. */
  private readonly sink: FanOutSink = {
    failed: (event, subscriber, error, payload, metadata) =>
      this.tell(event, subscriber, error, payload, metadata),
    ended: () => this.ended(),
  };
  private publishing = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  /** @throws CqrsError `INVALID_REGISTRATION` for a bad option (the message names it). */
  constructor(options: EventBusOptions = {}) {
    this.registry = new ChainRegistry('EventBus', 'event', options);
    const { onFailure, strategy = 'parallel' } = options;
    if (onFailure !== undefined && typeof onFailure !== 'function') {
      throw new CqrsError('INVALID_REGISTRATION', 'EventBus: options.onFailure must be a function');
    }
    if (strategy !== 'parallel' && strategy !== 'sequential') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `EventBus: options.strategy must be 'parallel' or 'sequential', got ${String(strategy)}`,
      );
    }
    this.onFailure = onFailure;
    this.strategy = strategy;
    this.logger = options.logger;
    this.registry.directory.attachPublisher(this);
  }

  /**
   * Subscribes `handler` to `definition` under `subscriber` (unique per event): an inline function, an
   * `inWorker(url, export)` reference (a `handle(definition, fn)` export run in the pool) or a `handle()`
   * value run inline. Its chain — the bus middleware, then `options.middleware` — is built here, once; its
   * figures are `getMetrics().handlers['<event>:<subscriber>']`.
   * @throws CqrsError `INVALID_REGISTRATION` (not a `defineEvent()` definition, another definition of the
   * same name already subscribed, a subscriber name that is empty or holds `:`, a bad handler or option),
   * `DUPLICATE_HANDLER` (the event has a subscriber of that name), `CLOSED` (the bus is closed).
   */
  subscribe<D extends EventDefinition>(
    definition: D,
    subscriber: string,
    handler: HandlerFor<D>,
    options: SubscribeOptions<D> = {},
  ): void {
    if (this.state !== OPEN) throw new CqrsError('CLOSED', 'subscribe: the bus is closed');
    const event = checkEvent(definition);
    if (typeof subscriber !== 'string' || subscriber === '' || subscriber.includes(':')) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${event}: the subscriber name must be a non-empty string without ':', got ${JSON.stringify(String(subscriber))}`,
        { handler: event },
      );
    }
    const key = `${event}:${subscriber}`;
    let topic = this.topics.get(event);
    if (topic !== undefined && topic.definition !== definition) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${key}: '${event}' is already subscribed with another definition; define each event once`,
        { handler: key },
      );
    }
    if (topic?.names.includes(subscriber) === true) {
      throw new CqrsError('DUPLICATE_HANDLER', `${key}: the event already has a subscriber of that name`, {
        handler: key,
      });
    }
    const registration = this.registry.register(
      key,
      definition,
      handler as HandlerFor<EventDefinition>,
      options as RegisterOptions,
      subscriber,
    );
    if (topic === undefined) {
      topic = { definition, names: [], registrations: [], keyed: false };
      this.topics.set(event, topic);
    }
    topic.names.push(subscriber);
    topic.registrations.push(registration);
    if (registration.ordering !== undefined) topic.keyed = true;
  }

  /**
   * Publishes an event: validates the payload once with the event's schema, then runs every subscriber's
   * chain — all at once (`strategy: 'parallel'`, the default) or one after another in subscription order
   * (`'sequential'`) — and resolves, when all have settled, with `{ event, delivered, failed }`. A failed
   * subscriber does not stop the others; it is listed in `failed` with its `CqrsError` and handed to
   * `onFailure`. An event nobody subscribed to is delivered to nobody (`delivered: []`).
   * @throws CqrsError (as a rejection; nothing ran) `VALIDATION` for a payload its schema refuses or options
   * that are not `{ metadata?, signal?, strategy? }`, `HANDLER_NOT_FOUND` for a name no subscriber subscribed
   * to (or a definition of another kind), `CLOSED` when the bus is closed.
   */
  publish<D extends EventDefinition>(
    definition: D,
    payload: PayloadOf<D>,
    options?: PublishOptions,
  ): Promise<PublishReport>;
  publish(name: string, payload: unknown, options?: PublishOptions): Promise<PublishReport>;
  publish(
    target: EventDefinition | string,
    payload: unknown,
    options?: PublishOptions,
  ): Promise<PublishReport> {
    if (this.state !== OPEN) {
      return this.registry.refuse(new CqrsError('CLOSED', `${nameOf(target)}: the bus is closed`));
    }
    let metadata = noMetadata;
    let signal: AbortSignal | undefined;
    let strategy = this.strategy;
    if (options !== undefined) {
      const bad = badPublishOptions(options);
      if (bad !== undefined) {
        const name = nameOf(target);
        return this.registry.refuse(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
      }
      metadata = options.metadata ?? noMetadata;
      signal = options.signal;
      strategy = options.strategy ?? strategy;
    }
    return this.start(target, payload, metadata, signal, strategy, undefined, 0, false);
  }

  /**
   * A publish from a handler (options already checked by its client); accepted while the bus drains, since
   * its caller is one of the calls it waits for. `checked`: a pool thread validated the payload against
   * the definition of that name (it could not send the definition), so an event this bus knows no
   * subscriber of is published to nobody, as `publish(definition, …)` would. @internal
   */
  publishNested(
    target: EventDefinition | string,
    payload: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal: AbortSignal | undefined,
    strategy: PublishStrategy | undefined,
    checked: boolean,
  ): Promise<PublishReport> {
    if (this.state === CLOSED) {
      return this.registry.refuse(new CqrsError('CLOSED', `${nameOf(target)}: the bus is closed`));
    }
    const how = strategy ?? this.strategy;
    return this.start(target, payload, metadata, signal, how, originThread, depth, checked);
  }

  /** Resolves the event, validates the payload, then fans it out. */
  private start(
    target: EventDefinition | string,
    payload: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    strategy: PublishStrategy,
    originThread: number | undefined,
    depth: number,
    checked: boolean,
  ): Promise<PublishReport> {
    let name: string;
    let definition: EventDefinition | undefined;
    if (typeof target === 'string') name = target;
    else if (typeof target === 'object' && target !== null && target.kind === 'event') {
      name = target.name;
      definition = target;
    } else {
      const what = typeof target === 'object' && target !== null ? target.kind : typeof target;
      const name = nameOf(target);
      return this.registry.refuse(
        new CqrsError(
          'HANDLER_NOT_FOUND',
          `${name} is a ${what}, not an event: publish defineEvent() events`,
          {
            handler: name,
          },
        ),
      );
    }
    const topic = this.topics.get(name);
    if (topic === undefined) {
      if (definition === undefined && !checked) {
        return this.registry.refuse(
          new CqrsError('HANDLER_NOT_FOUND', `no subscriber of event '${name}'`, { handler: name }),
        );
      }
      if (definition === undefined) return Promise.resolve({ event: name, delivered: [], failed: [] });
    }
    // The subscribed definition is the schema the subscribers were written against.
    const schema = (topic?.definition ?? (definition as EventDefinition)).payload;
    const parsed = parseValue(schema, payload, name, 'payload');
    if (parsed instanceof Promise) {
      // Counted while the schema's async refinements run: close() waits for this publish too.
      this.publishing++;
      return parsed.then(
        (value) => {
          const report = this.fanOut(name, topic, value, metadata, signal, strategy, originThread, depth);
          this.ended();
          return report;
        },
        (err: unknown) => {
          this.ended();
          throw this.registry.stacks ? err : stripStacks(err);
        },
      );
    }
    if (!parsed.success) return this.registry.refuse(invalid(name, 'payload', parsed.error.issues));
    return this.fanOut(name, topic, parsed.data, metadata, signal, strategy, originThread, depth);
  }

  /** Runs every subscriber of `topic` (none: an empty report), counted in flight until its report is out. */
  private fanOut(
    event: string,
    topic: Topic | undefined,
    payload: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    strategy: PublishStrategy,
    originThread: number | undefined,
    depth: number,
  ): Promise<PublishReport> {
    if (topic === undefined) return Promise.resolve({ event, delivered: [], failed: [] });
    this.publishing++;
    return fanOut(
      this.registry,
      this.sink,
      topic,
      event,
      payload,
      metadata,
      signal,
      strategy,
      originThread,
      depth,
    );
  }

  /** Hands one failure to `onFailure`; returns what to wait for before the publish resolves. */
  private tell(
    event: string,
    subscriber: string,
    error: CqrsError,
    payload: unknown,
    metadata: Metadata,
  ): Promise<void> | undefined {
    const onFailure = this.onFailure;
    if (onFailure === undefined) return undefined;
    let returned: unknown;
    try {
      returned = onFailure({ event, subscriber, error, payload, metadata });
    } catch (err) {
      this.warn(event, subscriber, err);
      return undefined;
    }
    if (typeof (returned as PromiseLike<void> | undefined)?.then !== 'function') return undefined;
    return Promise.resolve(returned as PromiseLike<void>).then(undefined, (err: unknown) =>
      this.warn(event, subscriber, err),
    );
  }

  private warn(event: string, subscriber: string, err: unknown): void {
    const message = `EventBus: onFailure threw for ${event}:${subscriber}`;
    try {
      if (this.logger !== undefined) this.logger.error({ err, event, subscriber }, message);
      else process.emitWarning(`${message}: ${err instanceof Error ? err.message : String(err)}`);
    } catch {
      // A logger that throws must not fail the publish either.
    }
  }

  /** One publish finished. */
  private ended(): void {
    if (--this.publishing === 0) this.drained?.();
  }

  /** The events that have subscribers, in the order of their first subscription. */
  getRegisteredEvents(): string[] {
    return [...this.topics.keys()];
  }

  /**
   * Loads every worker subscriber in the pool and checks its export, so a bad module or export is found
   * before traffic. Resolves when all load.
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` naming every subscriber (`<event>:<subscriber>`)
   * that cannot be loaded (a publish then lists it in `failed` with that error); `CLOSED` when the bus or its
   * pool is closed.
   */
  ready(): Promise<void> {
    if (this.state !== OPEN) {
      return this.registry.refuse(new CqrsError('CLOSED', 'ready(): the bus is closed'));
    }
    return this.registry.ready();
  }

  /**
   * Refuses new publishes with `CLOSED`, waits until every publish in flight has settled (all its
   * subscribers, and publishes they make meanwhile). Idempotent. Does not close the pool.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = CLOSING;
      if (this.publishing > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.state = CLOSED;
      await this.registry.close();
      this.registry.directory.detachPublisher(this);
    })();
    return this.closing;
  }

  /**
   * Executions, failures, in-flight calls and latency of every subscriber, keyed `<event>:<subscriber>`,
   * summed over every thread from shared memory; exact as a command bus's figures are.
   */
  getMetrics(): MetricsSnapshot {
    return this.registry.getMetrics();
  }

  /** The subscriber → slot mapping of this bus and its region, read by exporters on scrape. @internal */
  metricsSources(): MetricsSources {
    return this.registry.metricsSources();
  }

  /** True once {@link close} was called: new publishes are refused with `CLOSED`. */
  get closed(): boolean {
    return this.state !== OPEN;
  }

  /** Publishes accepted and not yet settled. */
  get pending(): number {
    return this.publishing;
  }
}

function nameOf(target: unknown): string {
  return typeof target === 'string' ? target : String((target as { name?: unknown } | null)?.name);
}

function checkEvent(definition: EventDefinition): string {
  if (
    typeof definition !== 'object' ||
    definition === null ||
    typeof definition.name !== 'string' ||
    definition.name === ''
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'subscribe: the definition must come from defineEvent() with a non-empty name',
    );
  }
  if (definition.kind !== 'event') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${definition.name} is a ${String(definition.kind)}; register it on a ${String(definition.kind)} bus`,
      { handler: definition.name },
    );
  }
  if (typeof definition.payload?.safeParse !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', `${definition.name}: the definition has no payload schema`, {
      handler: definition.name,
    });
  }
  return definition.name;
}
