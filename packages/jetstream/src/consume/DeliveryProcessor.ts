import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CompletionStore } from '../completions/CompletionStore.js';
import type { ResolvedOptions } from '../config/DurableOptions.js';
import { isPermanentFailure } from '../failures/isPermanentFailure.js';
import { retryDelay } from '../failures/retryDelay.js';
import { DurableMetadata } from '../wire/DurableHeaders.js';
import type { DeadLetterReason } from './writeDeadLetter.js';
import { writeDeadLetter } from './writeDeadLetter.js';

/** What a serving node or a subscriber group has done since it started. */
export interface DeliveryStats {
  /** Messages delivered to this node (redeliveries included). */
  received: number;
  /** Handled successfully and acknowledged. */
  succeeded: number;
  /** Attempts that failed (each is retried or dead-lettered). */
  failed: number;
  /** Failed attempts given back to JetStream for a later attempt (`nak` with backoff). */
  retried: number;
  /** Messages moved to the dead-letter stream (and terminated). */
  deadLettered: number;
  /** Redeliveries (or re-sends) of completed messages, acknowledged without running. */
  duplicates: number;
  /** Messages that could not be read (dead-lettered as `malformed`). */
  malformed: number;
  /** Messages being handled now. */
  inFlight: number;
}

/** A message as the processor needs it: its completion key, name, value and metadata. @internal */
export interface ParsedDelivery {
  readonly name: string;
  readonly messageId: string;
  readonly completionKey: string;
  readonly value: unknown;
  readonly metadata: Metadata;
}

/** What differs between commands and events. @internal */
export interface DeliverySpec<P extends ParsedDelivery> {
  /** The message, or why it cannot be read. */
  parse(m: JsMsg): P | string;
  /** Runs it; resolves with its result, rejects with its failure. */
  run(parsed: P, metadata: Metadata): Promise<unknown>;
  /** Where its dead letter goes. */
  deadSubject(m: JsMsg, parsed: P | undefined): string;
  /** The subscriber group, for an event's dead letter. */
  readonly group?: string;
  /** Called with a stored outcome record (commands announce it to waiters). */
  announce?(completionKey: string, record: Uint8Array): void;
}

/**
 * The life of one delivered message, the same for commands and events: read it (a malformed one is
 * dead-lettered), acknowledge it unseen when the completions bucket says it completed, run it while telling
 * JetStream it is still being worked on, then record the completion *before* the ack (so a redelivery after
 * a crash finds it), or on failure `nak` it with backoff (transient) or dead-letter and `term` it
 * (permanent, or out of attempts). A message is never dropped without being stored elsewhere: when the
 * dead-letter stream cannot be written, it is `nak`ed and comes back.
 * @internal
 */
export class DeliveryProcessor<P extends ParsedDelivery> {
  readonly stats: DeliveryStats = {
    received: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    duplicates: 0,
    malformed: 0,
    inFlight: 0,
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly store: CompletionStore,
    private readonly o: ResolvedOptions,
    private readonly spec: DeliverySpec<P>,
    private readonly onError: (err: unknown, where: string) => void,
  ) {}

  /** Handles `m` to its ack, nak or term. Never rejects. */
  async process(m: JsMsg): Promise<void> {
    this.stats.received++;
    this.stats.inFlight++;
    // A running handler keeps its message: JetStream would give it to another node after ackWait.
    const ticker = setInterval(() => m.working(), Math.max(100, Math.floor(this.o.ackWaitMs / 3)));
    try {
      await this.settle(m);
    } catch (err) {
      this.onError(err, `handling ${m.subject}`);
    } finally {
      clearInterval(ticker);
      this.stats.inFlight--;
    }
  }

  private async settle(m: JsMsg): Promise<void> {
    const parsed = this.spec.parse(m);
    if (typeof parsed === 'string') {
      this.stats.malformed++;
      const err = new CqrsError('VALIDATION', `malformed message on ${m.subject}: ${parsed}`);
      await this.deadLetter(m, undefined, 'malformed', err);
      return;
    }
    let record: Uint8Array | undefined;
    try {
      record = await this.store.get(parsed.completionKey);
    } catch (err) {
      // Unknown whether it completed: it must not run now. It comes back after the delay.
      this.onError(err, `reading the completion of ${parsed.messageId}`);
      m.nak(this.o.baseDelayMs);
      return;
    }
    if (this.store.isCompleted(record)) {
      this.stats.duplicates++;
      m.ack();
      return;
    }
    const deliveries = m.info.deliveryCount;
    if (deliveries > this.o.maxDeliver) {
      const err = new CqrsError(
        'TIMEOUT',
        `${parsed.name}: no outcome after ${deliveries - 1} deliveries (the nodes holding it stopped or died)`,
        { handler: parsed.name },
      );
      await this.deadLetter(m, parsed, 'no-outcome', err);
      return;
    }
    const metadata: Metadata = Object.freeze({
      ...parsed.metadata,
      [DurableMetadata.MESSAGE_ID]: parsed.messageId,
      [DurableMetadata.DELIVERY_COUNT]: String(deliveries),
    });
    let result: unknown;
    try {
      result = await this.spec.run(parsed, metadata);
    } catch (err) {
      this.stats.failed++;
      if (isPermanentFailure(err)) await this.deadLetter(m, parsed, 'permanent', err);
      else if (deliveries >= this.o.maxDeliver) await this.deadLetter(m, parsed, 'max-deliver', err);
      else {
        this.stats.retried++;
        m.nak(retryDelay(deliveries, err, this.o.baseDelayMs, this.o.maxDelayMs));
      }
      return;
    }
    const completed = this.store.completed(result);
    // The effect has happened: from here to the put below is the window where a crash makes a redelivery
    // run it again. Keep trying while the connection lives (the ticker keeps the message ours).
    await this.persist(parsed.completionKey, completed);
    m.ack();
    this.stats.succeeded++;
    this.spec.announce?.(parsed.completionKey, completed);
  }

  private async persist(key: string, record: Uint8Array): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.put(key, record);
        return;
      } catch (err) {
        if (this.nc.isClosed()) throw err;
        if (attempt === 0) this.onError(err, `recording the completion of ${key} (retrying)`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1_000)));
      }
    }
  }

  private async deadLetter(
    m: JsMsg,
    parsed: P | undefined,
    reason: DeadLetterReason,
    error: unknown,
  ): Promise<void> {
    try {
      await writeDeadLetter(this.js, m, this.spec.deadSubject(m, parsed), {
        reason,
        error,
        timeoutMs: this.o.ackWaitMs,
        ...(this.spec.group === undefined ? {} : { group: this.spec.group }),
      });
    } catch (err) {
      // Never terminated unless stored elsewhere: it comes back and is dead-lettered then.
      this.onError(err, `dead-lettering ${m.subject} #${m.seq}`);
      m.nak(this.o.maxDelayMs);
      return;
    }
    if (parsed !== undefined) {
      const record = this.store.deadLettered(error);
      // For waiters only: a replay runs it again whatever this says.
      await this.store.put(parsed.completionKey, record).then(
        () => this.spec.announce?.(parsed.completionKey, record),
        (err: unknown) => this.onError(err, `recording the dead letter of ${parsed.messageId}`),
      );
    }
    m.term();
    this.stats.deadLettered++;
  }
}
