import type { Metadata } from '@cqrs-pool/core';
import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import { AckPolicy, DeliverPolicy, ReplayPolicy } from '@nats-io/jetstream';
import { ConsumerLoop } from '../consume/ConsumerLoop.js';
import type { DeliveryStats, ParsedDelivery } from '../consume/DeliveryProcessor.js';
import { DeliveryProcessor } from '../consume/DeliveryProcessor.js';
import { parseDelivery } from '../consume/parseDelivery.js';
import { Semaphore } from '../consume/Semaphore.js';
import type { DurableContext } from '../DurableContext.js';
import { isPermanentFailure } from '../failures/isPermanentFailure.js';
import { permanent } from '../failures/permanent.js';
import { ensureConsumer, nanos } from '../setup/ensureTopology.js';
import { DurableHeaders } from '../wire/DurableHeaders.js';
import type { DurableEventHandler, EventSink } from './EventSink.js';

/** Options of `subscribe` (a durable subscriber group). */
export interface SubscribeOptions {
  /** Where a new group starts: every event still in the stream (`'all'`), or those published from now (`'new'`). Only when the group is created. Default `'all'`. */
  from?: 'all' | 'new';
  /** Only this event (by name); default every event of the prefix. Fixed when the group is created. */
  event?: string;
  /**
   * Events of this group in flight at once, across all its nodes. Default 1: one at a time, in the order
   * they were stored (a failing event holds the ones behind it until it succeeds or is dead-lettered).
   */
  maxAckPending?: number;
  /** Events this node handles at once. Default `min(maxAckPending, 64)`. */
  maxInFlight?: number;
  /** Told about what goes wrong outside a handler. Default: nothing (see `stats`). */
  onError?: (err: unknown, where: string) => void;
}

const groupName = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * One node's share of a durable subscriber group, made by `DurableMessaging.subscribe`: the group is a
 * durable consumer of the events stream (named after it), so it resumes where it stopped, and each event
 * goes to one of the group's nodes. Each event is handed to the local target; it is acknowledged when the
 * target succeeded, retried with backoff otherwise, dead-lettered as commands are.
 */
export class DurableEventSubscription {
  private readonly loop: ConsumerLoop;
  private readonly processor: DeliveryProcessor<ParsedDelivery>;
  private stopping: Promise<void> | undefined;

  /** @internal Use `DurableMessaging.subscribe`. */
  constructor(
    private readonly ctx: DurableContext,
    readonly group: string,
    target: EventSink | DurableEventHandler,
    private readonly settings: Required<Omit<SubscribeOptions, 'event'>> & { event: string | undefined },
  ) {
    const o = ctx.options;
    this.processor = new DeliveryProcessor(
      ctx.nc,
      ctx.js,
      ctx.completions,
      o,
      {
        parse: (m) => {
          const name = ctx.subjects.parseEvent(m.subject);
          if (name === undefined) return `subject '${m.subject}' is not <prefix>.devt.<Name>`;
          return parseDelivery(m, name, o, group);
        },
        // A replayed dead letter is for one group: the others acknowledge it unseen.
        skip: (m) => {
          const only = m.headers?.get(DurableHeaders.GROUP) ?? '';
          return only !== '' && only !== group;
        },
        run: (parsed, metadata) => deliver(target, parsed.name, parsed.value, metadata),
        deadSubject: (m, parsed) =>
          ctx.subjects.deadEvent(group, parsed?.name ?? ctx.subjects.parseEvent(m.subject) ?? '_'),
        group,
      },
      settings.onError,
    );
    this.loop = new ConsumerLoop({
      js: ctx.js,
      stream: o.names.events,
      consumer: group,
      ordered: settings.maxAckPending === 1,
      maxMessages: settings.maxInFlight,
      slots: new Semaphore(settings.maxInFlight),
      handle: (m) => this.processor.process(m),
      onError: settings.onError,
    });
  }

  /** A copy of the counts so far. */
  get stats(): DeliveryStats {
    return { ...this.processor.stats };
  }

  /** @internal */
  async start(): Promise<void> {
    const o = this.ctx.options;
    await ensureConsumer(this.ctx.jsm, o.names.events, {
      durable_name: this.group,
      filter_subject:
        this.settings.event === undefined
          ? this.ctx.subjects.events
          : this.ctx.subjects.event(this.settings.event),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: this.settings.from === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
      ack_wait: nanos(o.ackWaitMs),
      max_deliver: -1,
      max_ack_pending: this.settings.maxAckPending,
    });
    await this.loop.start();
  }

  /** Graceful stop, as a command server's: nothing new, the running events finish and are acknowledged. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.loop.stop();
    return this.stopping;
  }

  /** @internal */
  static checkGroup(group: unknown): string {
    if (typeof group !== 'string' || !groupName.test(group)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `subscribe: the group name must be 1-64 letters, digits, '_' or '-', got ${JSON.stringify(group)}`,
      );
    }
    return group;
  }
}

async function deliver(
  target: EventSink | DurableEventHandler,
  name: string,
  payload: unknown,
  metadata: Metadata,
): Promise<unknown> {
  if (typeof target === 'function') {
    try {
      return await target({ name, payload, metadata });
    } catch (err) {
      throw isCqrsError(err)
        ? err
        : new CqrsError('HANDLER_FAILED', `${name}: ${text(err)}`, { cause: err, handler: name });
    }
  }
  const report = await target.publish(name, payload, { metadata });
  const failed = Array.isArray(report?.failed) ? report.failed : [];
  if (failed.length === 0) return report?.delivered ?? [];
  if (failed.length === 1) {
    const only = failed[0]?.error;
    if (isCqrsError(only)) throw only;
  }
  const causes = failed.map((f) => (f.error instanceof Error ? f.error : new Error(String(f.error))));
  const cause = new AggregateError(causes, `${failed.length} subscribers failed`);
  const summary = failed
    .map((f) => `${f.subscriber} (${isCqrsError(f.error) ? f.error.code : 'error'})`)
    .join(', ');
  // Permanent only when no failure could be cured by a retry.
  throw new CqrsError('HANDLER_FAILED', `${name}: ${summary} failed`, {
    cause: failed.every((f) => isPermanentFailure(f.error)) ? permanent(cause) : cause,
    handler: name,
  });
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
