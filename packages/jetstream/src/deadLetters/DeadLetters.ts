import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import { decodeError, decodeMetadata, taggedJson } from '@cqrs-pool/nats';
import type { StoredMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { DeadLetterReason } from '../consume/writeDeadLetter.js';
import type { DurableContext } from '../DurableContext.js';
import type { SendReceipt } from '../send/storeMessage.js';
import { storeMessage } from '../send/storeMessage.js';
import { apiCode } from '../setup/ensureTopology.js';
import { DurableHeaders } from '../wire/DurableHeaders.js';

const NO_MESSAGE = 10037;

/** A message that was taken out of circulation, with why. */
export interface DeadLetter {
  /** Its sequence in the dead-letter stream: what `get`, `replay` and `discard` take. */
  readonly seq: number;
  readonly kind: 'command' | 'event';
  /** The command or event name. */
  readonly name: string;
  /** For an event: the subscriber group that could not handle it. */
  readonly group: string | undefined;
  /** Its message id (undefined when it had none: a malformed message). */
  readonly messageId: string | undefined;
  readonly reason: DeadLetterReason;
  /** The last error, rebuilt as a `CqrsError` with its code. */
  readonly error: CqrsError;
  /** How many times it was taken to be run (attempts, the last included; deliveries for a malformed message). */
  readonly deliveries: number;
  /** The subject it was stored on, where `replay` sends it. */
  readonly subject: string;
  /** When it was dead-lettered. */
  readonly at: Date;
  /** Its metadata; undefined when unreadable. */
  readonly metadata: Metadata | undefined;
  /** Its input or payload, decoded; undefined when it cannot be decoded (see `data`). */
  readonly value: unknown;
  /** Its body as stored. */
  readonly data: Uint8Array;
}

/**
 * The dead-letter stream: list what is there, look at one, send one back to be handled again, or discard
 * it. Letters stay until replayed or discarded (or `deadLetterMaxAgeMs`).
 */
export class DeadLetters {
  /** @internal */
  constructor(private readonly ctx: DurableContext) {}

  /** How many letters the stream holds. @throws CqrsError (as a rejection) `UNAVAILABLE`. */
  async count(): Promise<number> {
    const info = await this.info();
    return info.state.messages;
  }

  /**
   * Up to `limit` letters (default 100), oldest first, after sequence `afterSeq` (default: from the first).
   * @throws CqrsError (as a rejection) `UNAVAILABLE`.
   */
  async list(options: { limit?: number; afterSeq?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 100;
    const { state } = await this.info();
    const letters: DeadLetter[] = [];
    for (let seq = Math.max(state.first_seq, (options.afterSeq ?? 0) + 1); seq <= state.last_seq; seq++) {
      if (letters.length >= limit) break;
      const letter = await this.get(seq);
      if (letter !== undefined) letters.push(letter);
    }
    return letters;
  }

  /** The letter at `seq`, or undefined. @throws CqrsError (as a rejection) `UNAVAILABLE`. */
  async get(seq: number): Promise<DeadLetter | undefined> {
    const stored = await this.stored(seq);
    return stored === undefined ? undefined : this.letterOf(stored);
  }

  /**
   * Sends the letter back where it came from, to be handled again from its first attempt, and removes it.
   * It keeps its message id (a command that completed meanwhile is not run again; a completion record
   * written for the dead letter does not stop it); an event goes to its group only.
   * @throws CqrsError (as a rejection) `VALIDATION` (no letter at `seq`), `UNAVAILABLE`.
   */
  async replay(seq: number, options: { timeoutMs?: number } = {}): Promise<SendReceipt> {
    const letter = await this.get(seq);
    if (letter === undefined) throw new CqrsError('VALIDATION', `replay: no dead letter #${seq}`);
    const h = headers();
    const original = (await this.ctx.jsm.streams.getMessage(this.ctx.options.names.deadLetters, { seq }))
      ?.header;
    for (const [key, values] of original ?? []) {
      if (key.toLowerCase().startsWith('nats-') || key.startsWith('Cqrs-Dead-')) continue;
      for (const value of values) h.append(key, value);
    }
    h.set(DurableHeaders.REPLAY, String(seq));
    if (letter.group !== undefined) h.set(DurableHeaders.GROUP, letter.group);
    // A fresh de-duplication id: the original one may still be within the stream's duplicate window.
    const ack = await storeMessage(this.ctx.js, letter.subject, letter.data, h, {
      name: letter.name,
      messageId: `replay.${this.ctx.options.names.deadLetters}.${seq}`,
      timeoutMs: options.timeoutMs ?? 30_000,
    });
    await this.discard(seq);
    return {
      messageId: letter.messageId ?? '',
      stream: ack.stream,
      seq: ack.seq,
      duplicate: ack.duplicate,
      subject: letter.subject,
    };
  }

  /** Removes the letter at `seq`; false when there was none. @throws CqrsError (as a rejection) `UNAVAILABLE`. */
  async discard(seq: number): Promise<boolean> {
    try {
      return await this.ctx.jsm.streams.deleteMessage(this.ctx.options.names.deadLetters, seq, false);
    } catch (err) {
      if (apiCode(err) === NO_MESSAGE) return false;
      throw unavailable(`discarding dead letter #${seq}`, err);
    }
  }

  private async stored(seq: number): Promise<StoredMsg | undefined> {
    try {
      return (
        (await this.ctx.jsm.streams.getMessage(this.ctx.options.names.deadLetters, { seq })) ?? undefined
      );
    } catch (err) {
      if (apiCode(err) === NO_MESSAGE) return undefined;
      throw unavailable(`reading dead letter #${seq}`, err);
    }
  }

  private async info() {
    try {
      return await this.ctx.jsm.streams.info(this.ctx.options.names.deadLetters);
    } catch (err) {
      throw unavailable('reading the dead-letter stream', err);
    }
  }

  private letterOf(stored: StoredMsg): DeadLetter {
    const h = stored.header;
    const get = (key: string): string => h?.get(key) ?? '';
    const subject = get(DurableHeaders.DEAD_SUBJECT);
    const kind = stored.subject.startsWith(`${this.ctx.options.prefix}.dead.evt.`) ? 'event' : 'command';
    const group = get(DurableHeaders.DEAD_GROUP);
    const name = stored.subject.slice(stored.subject.lastIndexOf('.') + 1);
    let metadata: Metadata | undefined;
    try {
      const header = get(DurableHeaders.METADATA);
      metadata = header === '' ? {} : decodeMetadata(header);
    } catch {
      metadata = undefined;
    }
    let value: unknown;
    try {
      value = this.ctx.options.codec.decode(stored.data);
    } catch {
      value = undefined;
    }
    const messageId = get(DurableHeaders.MESSAGE_ID);
    return {
      seq: stored.seq,
      kind,
      name,
      group: group === '' ? undefined : group,
      messageId: messageId === '' ? undefined : messageId,
      reason: get(DurableHeaders.DEAD_REASON) as DeadLetterReason,
      error: decodeError(Buffer.from(get(DurableHeaders.DEAD_ERROR), 'utf8'), taggedJson, name),
      deliveries: Number(get(DurableHeaders.DEAD_DELIVERIES)) || 0,
      subject,
      at: new Date(get(DurableHeaders.DEAD_AT) || stored.time),
      metadata,
      value,
      data: stored.data,
    };
  }
}

function unavailable(doing: string, err: unknown): CqrsError {
  return new CqrsError(
    'UNAVAILABLE',
    `JetStream: ${doing} failed: ${err instanceof Error ? err.message : String(err)}`,
    {
      cause: err,
    },
  );
}
