import type { Metadata } from '@cqrs-pool/core';

/** What an {@link EventSink} reports of one event: the subscribers that handled it and those that failed. */
export interface EventDeliveryReport {
  readonly delivered: readonly string[];
  readonly failed: readonly { readonly subscriber: string; readonly error: unknown }[];
}

/**
 * Where a durable subscriber group hands its events: anything with `publish(name, payload, { metadata })`
 * that resolves with who handled the event and who failed — core's `EventBus` has this shape. The group
 * acknowledges an event when `failed` is empty; otherwise the event is retried (every local subscriber runs
 * again: make them idempotent with `metadata.messageId`) or dead-lettered when every failure is permanent or
 * attempts run out. A rejection of `publish` itself counts as a failure of the whole event.
 */
export interface EventSink {
  publish(name: string, payload: unknown, options: { metadata: Metadata }): Promise<EventDeliveryReport>;
}

/** A durable event as a handler function receives it. */
export interface DurableEvent {
  readonly name: string;
  readonly payload: unknown;
  /** The publisher's metadata plus `messageId` and `deliveryCount`. */
  readonly metadata: Metadata;
}

/** A function that handles a group's events; throwing (or rejecting) fails the delivery. */
export type DurableEventHandler = (event: DurableEvent) => unknown;
