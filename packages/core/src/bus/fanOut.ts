import type { CqrsError } from '../errors/CqrsError.js';
import { isCqrsError } from '../errors/CqrsError.js';
import { stripStacks } from '../errors/stripStacks.js';
import type { PublishReport, PublishStrategy, SubscriberFailure } from '../handler/EventClient.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { EventDefinition } from '../messages/Definition.js';
import type { ChainRegistry, Registration } from './ChainRegistry.js';
import { handlerFailed } from './handlerFailed.js';
import type { OrderTicket } from './KeyOrder.js';

/** The subscribers of one event, in subscription order. @internal */
export interface Topic {
  readonly definition: EventDefinition;
  readonly names: string[];
  readonly registrations: Registration[];
  /** Some subscriber has an `orderingKey`. */
  keyed: boolean;
}

/** Where a publish reports: each failure as it happens, and its end. @internal */
export interface FanOutSink {
  /** A subscriber failed: returns what the report must wait for (what `onFailure` returned), if anything. */
  failed(
    event: string,
    subscriber: string,
    error: CqrsError,
    payload: unknown,
    metadata: Metadata,
  ): Promise<void> | undefined;
  /** The publish is over: its report is out. */
  ended(): void;
}

/**
 * One publish with a subscriber still running (or failed): what each subscriber ended with, gathered into
 * its report. A publish whose subscribers all answered synchronously needs none.
 */
interface Publication {
  readonly registry: ChainRegistry;
  readonly sink: FanOutSink;
  readonly event: string;
  readonly topic: Topic;
  readonly payload: unknown;
  readonly metadata: Metadata;
  /** The subscribers this publish runs: the topic's first `count` (one may subscribe meanwhile). */
  readonly count: number;
  /** What each subscriber failed with, by index; made at the first failure. */
  outcomes: (CqrsError | undefined)[] | undefined;
  /** Subscribers not yet settled (parallel publishes). */
  left: number;
  /** What `onFailure` returned and the report waits for. */
  told: Promise<void>[] | undefined;
  /** Resolves the publish (parallel publishes). */
  resolve: ((report: PublishReport | Promise<PublishReport>) => void) | undefined;
}

/**
 * Runs every subscriber of `topic` with the (parsed) payload — each through its registration, as a command
 * bus runs a handler — all at once or one after another, and resolves with the report once every one has
 * settled and what the sink was handed for the failures has settled too. Never rejects.
 * @internal
 */
export function fanOut(
  registry: ChainRegistry,
  sink: FanOutSink,
  topic: Topic,
  event: string,
  payload: unknown,
  metadata: Metadata,
  signal: AbortSignal | undefined,
  strategy: PublishStrategy,
  originThread: number | undefined,
  depth: number,
): Promise<PublishReport> {
  const registrations = topic.registrations;
  const count = registrations.length;
  // Each keyed subscriber takes its place in its key's lane now, in publish order — also those a
  // sequential publish starts later, so a later publish of the same key never overtakes this one.
  let places: (OrderTicket | CqrsError | undefined)[] | undefined;
  if (topic.keyed) places = registrations.map((r) => registry.place(r, payload, metadata));
  // Subscriber `i`'s call (see ChainRegistry.deliver): undefined when it answered synchronously.
  const deliver = (i: number): Promise<unknown> | undefined =>
    registry.deliver(
      registrations[i] as Registration,
      event,
      payload,
      metadata,
      signal,
      originThread,
      depth,
      places?.[i],
    );
  if (strategy === 'sequential') {
    return (async () => {
      let publication: Publication | undefined;
      for (let i = 0; i < count; i++) {
        const pending = deliver(i);
        // A subscriber that answered synchronously is delivered already: nothing to await.
        if (pending === undefined) continue;
        try {
          await pending;
        } catch (err) {
          publication ??= publicationOf(registry, sink, topic, event, payload, metadata, count);
          failedAt(publication, i, err);
        }
      }
      return publication === undefined ? delivered(sink, topic, event, count) : finish(publication);
    })();
  }
  // Parallel: every subscriber starts now. Those that answered synchronously are delivered already; the
  // others are awaited, and the report is made after the last of them.
  let publication: Publication | undefined;
  for (let i = 0; i < count; i++) {
    const pending = deliver(i);
    if (pending === undefined) continue;
    publication ??= publicationOf(registry, sink, topic, event, payload, metadata, count);
    publication.left++;
    awaitSubscriber(publication, i, pending);
  }
  // Every subscriber answered synchronously: the report is ready, with no reaction per subscriber.
  if (publication === undefined) return Promise.resolve(delivered(sink, topic, event, count));
  const waiting = publication;
  return new Promise<PublishReport>((resolve) => {
    waiting.resolve = resolve;
  });
}

function publicationOf(
  registry: ChainRegistry,
  sink: FanOutSink,
  topic: Topic,
  event: string,
  payload: unknown,
  metadata: Metadata,
  count: number,
): Publication {
  return {
    registry,
    sink,
    event,
    topic,
    payload,
    metadata,
    count,
    outcomes: undefined,
    left: 0,
    told: undefined,
    resolve: undefined,
  };
}

/** Subscriber `i` is still running: its outcome is noted when it settles, and the last one ends the publish. */
function awaitSubscriber(publication: Publication, i: number, pending: Promise<unknown>): void {
  // Subscribers settle in later microtasks, after `fanOut` has set `resolve`.
  const settled = (): void => {
    if (--publication.left === 0)
      (publication.resolve as NonNullable<Publication['resolve']>)(finish(publication));
  };
  pending.then(settled, (err: unknown) => {
    failedAt(publication, i, err);
    settled();
  });
}

/** The report of a publish every subscriber of which was delivered. */
function delivered(sink: FanOutSink, topic: Topic, event: string, count: number): PublishReport {
  sink.ended();
  return { event, delivered: topic.names.slice(0, count), failed: [] };
}

/** Subscriber `i` failed with `err`: noted, and handed to the sink. */
function failedAt(publication: Publication, i: number, err: unknown): void {
  const registration = publication.topic.registrations[i] as Registration;
  let error: CqrsError;
  if (isCqrsError(err)) error = err;
  else {
    // A custom middleware rejected with something else: still reported as a CqrsError.
    error = handlerFailed(registration.key, err);
    if (!publication.registry.stacks) stripStacks(error);
  }
  publication.outcomes ??= new Array<CqrsError | undefined>(publication.count).fill(undefined);
  publication.outcomes[i] = error;
  const { event, payload, metadata } = publication;
  const waiting = publication.sink.failed(event, registration.subscriber as string, error, payload, metadata);
  if (waiting === undefined) return;
  if (publication.told === undefined) publication.told = [waiting];
  else publication.told.push(waiting);
}

/** Every subscriber settled: the report, once what the sink was handed has settled too. */
function finish(publication: Publication): PublishReport | Promise<PublishReport> {
  const told = publication.told;
  if (told !== undefined) {
    publication.told = undefined;
    return Promise.all(told).then(() => finish(publication));
  }
  const { outcomes, topic, sink, event, count } = publication;
  if (outcomes === undefined) return delivered(sink, topic, event, count);
  sink.ended();
  const names: string[] = [];
  const failed: SubscriberFailure[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const error = outcomes[i];
    const subscriber = topic.names[i] as string;
    if (error === undefined) names.push(subscriber);
    else failed.push({ subscriber, error });
  }
  return { event, delivered: names, failed };
}
