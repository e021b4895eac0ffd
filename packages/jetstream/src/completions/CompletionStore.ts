import { CqrsError } from '@cqrs-pool/core';
import type { Codec } from '@cqrs-pool/nats';
import { decodeError, encodeError, taggedJson } from '@cqrs-pool/nats';
import type { KV } from '@nats-io/kv';
import { apiCode } from '../setup/ensureTopology.js';

/** What a waiter learns of a message: it completed (with its result, when kept), or it was dead-lettered. */
export type Completion =
  | { readonly status: 'completed'; readonly result: unknown; readonly kept: true }
  | { readonly status: 'completed'; readonly kept: false; readonly why: string }
  | { readonly status: 'dead-lettered'; readonly error: CqrsError };

/** A message's record as a serving node reads it. @internal */
export type StoredState =
  | { readonly kind: 'completed' }
  | { readonly kind: 'dead-lettered' }
  /** Being run: `attempt` n by `node`, claim refreshed at `at` (ms since the epoch, the claimer's clock); `at` 0 when released after a failed attempt. */
  | { readonly kind: 'claimed'; readonly attempt: number; readonly at: number; readonly node: string }
  | { readonly kind: 'unreadable' };

// The stored record, encoded by the codec:
//   { s: 'run', a: attempt, at, n: node }   claimed (being run, or released after a failed attempt: at 0)
//   { s: 'ok', r } | { s: 'ok', n: why }     completed, with its result or why the result is not kept
//   { s: 'dead', e }                         dead-lettered, with its error (encodeError with taggedJson)
interface StoredRecord {
  s: 'run' | 'ok' | 'dead';
  r?: unknown;
  n?: string;
  e?: string;
  a?: number;
  at?: number;
}

const WRONG_LAST_SEQUENCE = 10071;
const WRONG_LAST_SEQUENCE_UNKNOWN = 10164;

/**
 * The completions bucket (JetStream KV, one key per message id, TTL `completionTtlMs`). A serving node
 * *claims* a message there before running it (a create, which only one node can win), refreshes the claim
 * while the handler runs, and replaces it with the completion — the result — before the ack; a failure
 * releases the claim, a dead letter replaces it with the error. So a redelivery of a completed message is
 * acknowledged without running, a message another live node is running waits for it, and waiters find
 * outcomes there.
 * @internal
 */
export class CompletionStore {
  constructor(
    readonly kv: KV,
    private readonly codec: Codec,
    private readonly maxResultBytes: number,
    /**
     * The longest wait for one write's confirmation. Short (a quarter of ackWait, 0.2-2 s): a write sent
     * into a connection as its server died is never answered, and the writer must retry soon after the
     * reconnect — before its claim looks stale to the other nodes.
     */
    private readonly writeTimeoutMs: number,
  ) {}

  /**
   * Claims `key` if nothing is stored under it: its revision, or undefined when something is (read it).
   * Rejects when JetStream does not confirm (the caller must not run the message).
   */
  async claim(key: string, claim: Uint8Array): Promise<number | undefined> {
    return this.putIf(key, claim, 0);
  }

  /** Replaces the record at `revision`: the new revision, or undefined when it changed meanwhile. */
  async replace(key: string, record: Uint8Array, revision: number): Promise<number | undefined> {
    return this.putIf(key, record, revision);
  }

  /** The record under `key` and its revision, or undefined. Rejects when JetStream cannot be read. */
  async read(key: string): Promise<{ state: StoredState; revision: number; bytes: Uint8Array } | undefined> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    return { state: this.stateOf(entry.value), revision: entry.revision, bytes: entry.value };
  }

  /** Stores a record whatever is there; rejects when JetStream does not confirm it. */
  async put(key: string, record: Uint8Array): Promise<void> {
    await this.kv.put(key, record, { timeout: this.writeTimeoutMs });
  }

  /** The raw record under `key`, for waiters. */
  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.read(key))?.bytes;
  }

  /** A claim record: attempt `attempt` by `node`, at `at` (0: released). */
  claimed(attempt: number, node: string, at: number): Uint8Array {
    return this.codec.encode({ s: 'run', a: attempt, at, n: node } satisfies StoredRecord);
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

  /** A stored record as a waiter's outcome; undefined while it is only claimed. Unreadable: `NOT_CLONEABLE`. */
  decode(record: Uint8Array, name: string): Completion | undefined {
    let data: StoredRecord;
    try {
      data = this.codec.decode(record) as StoredRecord;
    } catch (err) {
      return { status: 'dead-lettered', error: unreadable(name, err) };
    }
    if (data?.s === 'run') return undefined;
    if (data?.s === 'ok') {
      if (typeof data.n === 'string') return { status: 'completed', kept: false, why: data.n };
      return { status: 'completed', kept: true, result: data.r };
    }
    if (data?.s === 'dead' && typeof data.e === 'string') {
      return { status: 'dead-lettered', error: decodeError(Buffer.from(data.e, 'utf8'), taggedJson, name) };
    }
    return { status: 'dead-lettered', error: unreadable(name, new TypeError('not a completion record')) };
  }

  private stateOf(bytes: Uint8Array): StoredState {
    let data: StoredRecord;
    try {
      data = this.codec.decode(bytes) as StoredRecord;
    } catch {
      return { kind: 'unreadable' };
    }
    switch (data?.s) {
      case 'ok':
        return { kind: 'completed' };
      case 'dead':
        return { kind: 'dead-lettered' };
      case 'run':
        return {
          kind: 'claimed',
          attempt: typeof data.a === 'number' ? data.a : 0,
          at: typeof data.at === 'number' ? data.at : 0,
          node: String(data.n),
        };
      default:
        return { kind: 'unreadable' };
    }
  }

  private async putIf(key: string, record: Uint8Array, previousSeq: number): Promise<number | undefined> {
    try {
      return await this.kv.put(key, record, { previousSeq, timeout: this.writeTimeoutMs });
    } catch (err) {
      const code = apiCode(err);
      if (code === WRONG_LAST_SEQUENCE || code === WRONG_LAST_SEQUENCE_UNKNOWN) return undefined;
      throw err;
    }
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
