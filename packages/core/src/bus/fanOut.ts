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

/** One publish in flight: what each subscriber ended with (undefined: delivered), gathered into its report. */
interface Publication {
  readonly registry: ChainRegistry;
  readonly sink: FanOutSink;
  readonly event: string;
  readonly topic: Topic;
  readonly payload: unknown;
  readonly metadata: Metadata;
  readonly outcomes: (CqrsError | undefined)[];
  /** Subscribers not yet settled (parallel publishes). */
  left: number;
  /** What `onFailure` returned and the report waits for. */
  told: Promise<void>[] | undefined;
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
  const publication: Publication = {
    registry,
    sink,
    event,
    topic,
    payload,
    metadata,
    outcomes: new Array(count).fill(undefined),
    left: count,
    told: undefined,
  };
  const run = (i: number): Promise<unknown> =>
    registry.run(
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
      for (let i = 0; i < count; i++) {
        try {
          await run(i);
        } catch (err) {
          failedAt(publication, i, err);
        }
      }
      return finish(publication);
    })();
  }
  return new Promise<PublishReport>((resolve) => {
    const settled = (): void => {
      if (--publication.left === 0) resolve(finish(publication));
    };
    for (let i = 0; i < count; i++) {
      run(i).then(settled, (err: unknown) => {
        failedAt(publication, i, err);
        settled();
      });
    }
  });
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
  publication.sink.ended();
  const { outcomes, topic } = publication;
  const delivered: string[] = [];
  const failed: SubscriberFailure[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const error = outcomes[i];
    const subscriber = topic.names[i] as string;
    if (error === undefined) delivered.push(subscriber);
    else failed.push({ subscriber, error });
  }
  return { event: publication.event, delivered, failed };
}
