import type { CqrsError } from '../errors/CqrsError.js';
import type { EventDefinition, PayloadOf } from '../messages/Definition.js';
import type { Metadata } from './HandlerContext.js';

/** How `publish` runs the subscribers: all at once (default), or one after another in subscription order. */
export type PublishStrategy = 'parallel' | 'sequential';

/** Options of `publish`. */
export interface PublishOptions {
  /** Handed to every subscriber's middleware (`call.metadata`) and handler (`ctx.metadata`). */
  metadata?: Metadata;
  /** Aborting it settles the subscribers still running or waiting with `ABORTED` (each a failure). */
  signal?: AbortSignal;
  /** Default: the bus's `strategy` option, itself `'parallel'` by default. */
  strategy?: PublishStrategy;
}

/** One subscriber that did not get the event: its name and the `CqrsError` its chain ended with. */
export interface SubscriberFailure {
  readonly subscriber: string;
  readonly error: CqrsError;
}

/**
 * What `publish` resolves with once every subscriber has settled: the subscribers that handled the event and
 * the ones that failed, each list in subscription order. Every subscriber is in exactly one of them.
 */
export interface PublishReport {
  readonly event: string;
  readonly delivered: readonly string[];
  readonly failed: readonly SubscriberFailure[];
}

/** The face of the event bus a handler sees through `ctx.events`. */
export interface EventClient {
  /**
   * Publishes an event to the `EventBus` sharing this pool, through its subscribers' middleware; metadata
   * defaults to the calling handler's. Resolves with the report when every subscriber has settled.
   */
  publish<D extends EventDefinition>(
    definition: D,
    payload: PayloadOf<D>,
    options?: PublishOptions,
  ): Promise<PublishReport>;
  publish(name: string, payload: unknown, options?: PublishOptions): Promise<PublishReport>;
}
