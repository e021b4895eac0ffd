import { CqrsError } from '@cqrs-pool/core';
import type { Codec } from '@cqrs-pool/nats';
import { decodeError, encodeError, taggedJson } from '@cqrs-pool/nats';
import type { KV } from '@nats-io/kv';

/** What a waiter learns of a message: it completed (with its result, when kept), or it was dead-lettered. */
export type Completion =
  | { readonly status: 'completed'; readonly result: unknown; readonly kept: true }
  | { readonly status: 'completed'; readonly kept: false; readonly why: string }
  | { readonly status: 'dead-lettered'; readonly error: CqrsError };

// The stored record, encoded by the codec: { s: 'ok', r } | { s: 'ok', n: why not kept } | { s: 'dead', e }.
interface StoredRecord {
  s: 'ok' | 'dead';
  r?: unknown;
  n?: string;
  e?: string;
}

/**
 * The completions bucket (JetStream KV, one key per message id, TTL `completionTtlMs`): written by a serving
 * node after a handler succeeded and before the message is acknowledged, read before a message is run. It is
 * what keeps a redelivered completed message from running twice, and where waiters find outcomes. A
 * dead-lettered message is written too (for waiters), but only a completion stops a run: a replayed dead
 * letter runs again.
 * @internal
 */
export class CompletionStore {
  constructor(
    readonly kv: KV,
    private readonly codec: Codec,
    private readonly maxResultBytes: number,
  ) {}

  /** The record of `key`, or undefined. Rejects when JetStream cannot be read (the caller decides). */
  async get(key: string): Promise<Uint8Array | undefined> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    return entry.value;
  }

  /** Stores a record; rejects when JetStream does not confirm it. */
  async put(key: string, record: Uint8Array): Promise<void> {
    await this.kv.put(key, record);
  }

  /** True when a stored record says the message completed (what makes a node skip a redelivery). */
  isCompleted(record: Uint8Array | undefined): boolean {
    if (record === undefined) return false;
    try {
      return (this.codec.decode(record) as StoredRecord | null)?.s === 'ok';
    } catch {
      return false;
    }
  }

  /** The record of a success: the result when it encodes within `maxResultBytes`, else why it is not kept. */
  completed(result: unknown): Uint8Array {
    let body: Uint8Array;
    try {
      body = this.codec.encode({ s: 'ok', r: result } satisfies StoredRecord);
    } catch (err) {
      return this.codec.encode({
        s: 'ok',
        n: `the result cannot be encoded (${this.codec.name}): ${text(err)}`,
      });
    }
    if (body.byteLength <= this.maxResultBytes) return body;
    return this.codec.encode({
      s: 'ok',
      n: `the result is ${body.byteLength} bytes encoded, over maxResultBytes (${this.maxResultBytes})`,
    } satisfies StoredRecord);
  }

  /** The record of a dead letter: its error as plain data. */
  deadLettered(err: unknown): Uint8Array {
    const e = Buffer.from(encodeError(err, taggedJson)).toString('utf8');
    return this.codec.encode({ s: 'dead', e } satisfies StoredRecord);
  }

  /** A stored record as a waiter's outcome; a record it cannot read is `NOT_CLONEABLE`. */
  decode(record: Uint8Array, name: string): Completion {
    let data: StoredRecord;
    try {
      data = this.codec.decode(record) as StoredRecord;
    } catch (err) {
      return { status: 'dead-lettered', error: unreadable(name, err) };
    }
    if (data?.s === 'ok') {
      if (typeof data.n === 'string') return { status: 'completed', kept: false, why: data.n };
      return { status: 'completed', kept: true, result: data.r };
    }
    if (data?.s === 'dead' && typeof data.e === 'string') {
      return { status: 'dead-lettered', error: decodeError(Buffer.from(data.e, 'utf8'), taggedJson, name) };
    }
    return { status: 'dead-lettered', error: unreadable(name, new TypeError('not a completion record')) };
  }
}

function unreadable(name: string, cause: unknown): CqrsError {
  return new CqrsError('NOT_CLONEABLE', `${name}: the stored outcome cannot be decoded: ${text(cause)}`, {
    cause,
    handler: name,
  });
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
