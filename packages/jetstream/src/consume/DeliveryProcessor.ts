import { randomUUID } from 'node:crypto';
import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CompletionStore } from '../completions/CompletionStore.js';
import type { ResolvedOptions } from '../config/DurableOptions.js';
import { isPermanentFailure } from '../failures/isPermanentFailure.js';
import { retryDelay } from '../failures/retryDelay.js';
import { DurableHeaders, DurableMetadata } from '../wire/DurableHeaders.js';
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
  /** Redeliveries (or re-sends) of completed or dead-lettered messages, settled without running. */
  duplicates: number;
  /** Messages that could not be read (dead-lettered as `malformed`). */
  malformed: number;
  /** Deliveries given back because another live node was running the same message. */
  deferred: number;
  /** Messages being handled now. */
  inFlight: number;
}

/** This node's hold on the message it runs. */
interface Claim {
  key: string;
  attempt: number;
  revision: number | undefined;
  refreshing: Promise<void> | undefined;
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
  /** True for a message this consumer acknowledges unseen (a replayed event for another group). */
  skip?(m: JsMsg): boolean;
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

/** Other nodes' claims a node keeps watching at most (see DeliveryProcessor.seenClaims). */
const MAX_SEEN_CLAIMS = 10_000;

/**
 * The life of one delivered message, the same for commands and events: read it (a malformed one is
 * dead-lettered); claim it in the completions bucket (one node wins; a completed message is acknowledged
 * unseen, one another live node holds is given back); run it while telling JetStream and the bucket it is
 * still being worked on; then record the completion *before* the ack (so a redelivery after any crash finds
 * it), or on failure `nak` it with backoff (transient) or dead-letter and `term` it (permanent, or out of
 * attempts). A message is never dropped without being stored elsewhere: when the dead-letter stream cannot
 * be written, it is `nak`ed and comes back.
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
    deferred: 0,
    inFlight: 0,
  };
  /** Names this node in its claims (for whoever reads the bucket). */
  private readonly node = randomUUID().slice(0, 8);
  /** A claim not refreshed for this long is taken over: its node is taken to be dead. */
  private readonly staleMs: number;
  /** How often a node refreshes the claim of a message it runs (each refresh changes its revision). */
  private readonly refreshMs: number;
  /**
   * Claims of other nodes this node found, by key: the revision it saw and when it first saw it, on its own
   * monotonic clock. A claim's time was written by its node's wall clock, which may be hours off this one's:
   * alone, it would let a node take over a live claim (and run a command twice) or wait on a dead one for
   * hours. So a claim is stale only when its time says so and this node has also seen it unchanged — not
   * refreshed — for two refresh periods.
   */
  private readonly seenClaims = new Map<string, { readonly revision: number; readonly since: number }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly store: CompletionStore,
    private readonly o: ResolvedOptions,
    private readonly spec: DeliverySpec<P>,
    private readonly onError: (err: unknown, where: string) => void,
  ) {
    this.staleMs = 2 * o.ackWaitMs;
    this.refreshMs = Math.max(100, Math.floor(o.ackWaitMs / 3));
  }

  /** Handles `m` to its ack, nak or term. Never rejects. */
  async process(m: JsMsg): Promise<void> {
    this.stats.received++;
    this.stats.inFlight++;
    // A message being handled stays this node's: JetStream would give it to another node after ackWait.
    const claim: Claim = { key: '', attempt: 0, revision: undefined, refreshing: undefined };
    const ticker = setInterval(() => this.tick(m, claim), this.refreshMs);
    try {
      await this.settle(m, claim, ticker);
    } catch (err) {
      this.onError(err, `handling ${m.subject}`);
    } finally {
      clearInterval(ticker);
      this.stats.inFlight--;
    }
  }

  private async settle(m: JsMsg, claim: Claim, ticker: NodeJS.Timeout): Promise<void> {
    if (this.spec.skip?.(m) === true) {
      m.ack();
      return;
    }
    const parsed = this.spec.parse(m);
    if (typeof parsed === 'string') {
      this.stats.malformed++;
      const err = new CqrsError('VALIDATION', `malformed message on ${m.subject}: ${parsed}`);
      await this.deadLetter(m, undefined, 'malformed', err, m.info.deliveryCount);
      return;
    }
    claim.key = parsed.completionKey;
    if (!(await this.take(m, claim))) return;
    if (claim.attempt > this.o.maxDeliver) {
      const err = new CqrsError(
        'TIMEOUT',
        `${parsed.name}: no outcome after ${claim.attempt - 1} attempts (the nodes running it stopped or died)`,
        { handler: parsed.name },
      );
      await this.deadLetter(m, parsed, 'no-outcome', err, claim.attempt);
      return;
    }
    const metadata: Metadata = Object.freeze({
      ...parsed.metadata,
      [DurableMetadata.MESSAGE_ID]: parsed.messageId,
      [DurableMetadata.DELIVERY_COUNT]: String(claim.attempt),
    });
    let result: unknown;
    try {
      result = await this.spec.run(parsed, metadata);
    } catch (err) {
      this.stats.failed++;
      clearInterval(ticker);
      await claim.refreshing;
      if (isPermanentFailure(err)) await this.deadLetter(m, parsed, 'permanent', err, claim.attempt);
      else if (claim.attempt >= this.o.maxDeliver) {
        await this.deadLetter(m, parsed, 'max-deliver', err, claim.attempt);
      } else {
        // Released (claimed at time 0), so the next attempt, on any node, need not wait for it to go stale.
        if (claim.revision !== undefined) {
          await this.store
            .replace(claim.key, this.store.claimed(claim.attempt, this.node, 0), claim.revision)
            .catch(() => undefined);
        }
        this.stats.retried++;
        m.nak(retryDelay(claim.attempt, err, this.o.baseDelayMs, this.o.maxDelayMs));
      }
      return;
    }
    clearInterval(ticker);
    await claim.refreshing;
    const completed = this.store.completed(result);
    // The effect has happened: until the put below lands, a crash of this node makes the message run again
    // once its claim goes stale. Keep trying while the connection lives (a server restart, say).
    await this.persist(claim.key, completed, m);
    m.ack();
    this.stats.succeeded++;
    this.spec.announce?.(claim.key, completed);
  }

  /**
   * Claims the message in the completions bucket — a create, which one node wins — and sets `claim`'s
   * attempt and revision. False when it must not run here: it completed (acknowledged), another live node
   * runs it (given back until that node's outcome or its claim going stale), or the bucket cannot be
   * reached (given back).
   */
  private async take(m: JsMsg, claim: Claim): Promise<boolean> {
    try {
      claim.revision = await this.store.claim(claim.key, this.store.claimed(1, this.node, Date.now()));
      if (claim.revision !== undefined) {
        claim.attempt = 1;
        return true;
      }
      const current = await this.store.read(claim.key);
      if (current === undefined) {
        // Gone between the two calls (its TTL): try again shortly.
        m.nak(this.o.baseDelayMs);
        return false;
      }
      const state = current.state;
      if (state.kind !== 'claimed') this.seenClaims.delete(claim.key);
      if (state.kind === 'completed') {
        this.stats.duplicates++;
        m.ack();
        // A re-send's waiter may be listening (it does not look in the bucket after a fresh send).
        this.spec.announce?.(claim.key, current.bytes);
        return false;
      }
      if (state.kind === 'dead-lettered' && !m.headers?.has(DurableHeaders.REPLAY)) {
        // Its dead letter is stored (the term that followed was lost), or it is a re-send of a messageId that
        // was dead-lettered: the same command, not run again. A replay of the dead letter runs it.
        this.stats.duplicates++;
        m.term();
        this.spec.announce?.(claim.key, current.bytes);
        return false;
      }
      // Attempts are counted in the claims, not by JetStream: its count also grows with every delivery given
      // back below, and restarts when a server loses a consumer's state.
      let attempt = 1;
      if (state.kind === 'claimed') {
        if (state.at !== 0 && !this.isStale(claim.key, current.revision, state.at)) {
          // Another node runs it (or ran it and is storing the outcome, say after a server restart that
          // lost the consumer's delivery state): it will acknowledge it, or its claim goes stale.
          this.stats.deferred++;
          const age = Date.now() - state.at;
          m.nak(
            age >= this.staleMs ? this.refreshMs : Math.min(Math.max(this.staleMs - age, 50), this.refreshMs),
          );
          return false;
        }
        attempt = state.attempt + 1;
      }
      this.seenClaims.delete(claim.key);
      // Released, stale, replayed from the dead letters, or unreadable: this node takes it over.
      claim.revision = await this.store.replace(
        claim.key,
        this.store.claimed(attempt, this.node, Date.now()),
        current.revision,
      );
      if (claim.revision === undefined) {
        m.nak(this.o.baseDelayMs);
        return false;
      }
      claim.attempt = attempt;
      return true;
    } catch (err) {
      // Unknown whether it completed or runs elsewhere: it must not run now. It comes back after the delay.
      this.onError(err, `claiming ${claim.key}`);
      m.nak(this.o.baseDelayMs);
      return false;
    }
  }

  /**
   * Whether another node's claim on `key`, at `revision`, written at `at` by that node's clock, is stale:
   * its time is `staleMs` old (or as far ahead: a clock that far off says nothing), and this node has seen
   * that same revision for two refresh periods of its own clock — so its node stopped refreshing it.
   */
  private isStale(key: string, revision: number, at: number): boolean {
    const now = performance.now();
    const seen = this.seenClaims.get(key);
    if (seen === undefined || seen.revision !== revision) {
      // Bounded: a key is forgotten once taken over or completed; this caps what a flood of claims holds.
      if (this.seenClaims.size >= MAX_SEEN_CLAIMS) {
        this.seenClaims.delete(this.seenClaims.keys().next().value as string);
      }
      this.seenClaims.set(key, { revision, since: now });
      return false;
    }
    const age = Math.abs(Date.now() - at);
    return age >= this.staleMs && now - seen.since >= 2 * this.refreshMs;
  }

  /** Every third of ackWait while a handler runs: tells JetStream, and refreshes the claim. */
  private tick(m: JsMsg, claim: Claim): void {
    m.working();
    const revision = claim.revision;
    if (revision === undefined || claim.refreshing !== undefined) return;
    claim.refreshing = this.store
      .replace(claim.key, this.store.claimed(claim.attempt, this.node, Date.now()), revision)
      .then(
        (next) => {
          if (next === undefined)
            this.onError(new Error('taken over by another node'), `refreshing ${claim.key}`);
          claim.revision = next;
        },
        (err: unknown) => this.onError(err, `refreshing ${claim.key}`),
      )
      .finally(() => {
        claim.refreshing = undefined;
      });
  }

  private async persist(key: string, record: Uint8Array, m: JsMsg): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.put(key, record);
        return;
      } catch (err) {
        if (this.nc.isClosed()) throw err;
        if (attempt === 0) this.onError(err, `recording the completion of ${key} (retrying)`);
        m.working();
        await new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** attempt, 250)));
      }
    }
  }

  private async deadLetter(
    m: JsMsg,
    parsed: P | undefined,
    reason: DeadLetterReason,
    error: unknown,
    attempts: number,
  ): Promise<void> {
    try {
      await writeDeadLetter(this.js, m, this.spec.deadSubject(m, parsed), {
        reason,
        error,
        attempts,
        timeoutMs: this.o.ackWaitMs,
        ...(this.spec.group === undefined ? {} : { group: this.spec.group }),
      });
    } catch (err) {
      // Never terminated unless stored elsewhere: it comes back and is dead-lettered then.
      this.onError(err, `dead-lettering ${m.subject} #${m.seq}`);
      m.nak(this.o.maxDelayMs);
      return;
    }
    let record: Uint8Array | undefined;
    if (parsed !== undefined) {
      // For waiters, and so that a copy of the message is not run again; a replay runs it whatever this says.
      record = this.store.deadLettered(error);
      await this.store.put(parsed.completionKey, record).catch((err: unknown) => {
        record = undefined;
        this.onError(err, `recording the dead letter of ${parsed.messageId}`);
      });
    }
    m.term();
    this.stats.deadLettered++;
    if (parsed !== undefined && record !== undefined) this.spec.announce?.(parsed.completionKey, record);
  }
}
