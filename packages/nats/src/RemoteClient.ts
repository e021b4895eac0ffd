import type { Metadata } from '@cqrs-pool/core';
import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox, headers } from '@nats-io/transport-node';
import type { Codec } from './Codec.js';
import { encodeMetadata } from './metadataHeader.js';
import { checkPrefix, DEFAULT_PREFIX } from './subjects.js';
import { taggedJson } from './taggedJson.js';
import { decodeError } from './wireError.js';
import { STATUS_ERROR, WireHeaders } from './wireHeaders.js';

/** Options of {@link RemoteClient}. */
export interface RemoteClientOptions {
  /** Subject prefix: calls go to `<prefix>.cmd.<Name>` / `<prefix>.qry.<Name>`. Default `'cqrs'`. Must match the servers'. */
  prefix?: string;
  /**
   * Requests this client may have in flight at once; one more is refused at once with `OVERLOADED` (nothing
   * is sent, nothing queued). Default 1024.
   */
  maxInFlight?: number;
  /**
   * How long a request may wait for its reply, in ms, when nothing shorter bounds it: past it the caller gets
   * `TIMEOUT` and a late reply is dropped. A server that dies with a request in hand never answers, so this
   * is what ends such a call. Default 30 000. A `timeout()` middleware on the calling bus ends it sooner.
   */
  timeoutMs?: number;
  /** Encodes inputs and decodes results and errors. Default {@link taggedJson}. Must match the servers'. */
  codec?: Codec;
  /**
   * Where replies come back: this client subscribes to `<inboxPrefix>.<unique>.*`. Default: the connection's
   * own `inboxPrefix` option (`connect({ inboxPrefix })`), else `_INBOX`. Give each caller's NATS user a
   * prefix of its own and the subscribe permission for it only, so no caller can read another's replies.
   */
  inboxPrefix?: string;
}

interface Pending {
  readonly name: string;
  readonly subject: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Sends calls over NATS request/reply and matches the replies: one inbox subscription for all its requests
 * (made on first use), a table of pending requests bounded by `maxInFlight`, a timer per request. A request
 * the caller abandons (abort, timeout) leaves the table at once; its late reply is dropped. Share one client
 * among several `remote()` handlers to share one bound.
 */
export class RemoteClient {
  /** The subject prefix of `remote()` handlers made from this client (`options.prefix`). */
  readonly prefix: string;
  /** The in-flight bound (`options.maxInFlight`). */
  readonly maxInFlight: number;
  /** The longest wait for a reply, in ms (`options.timeoutMs`). */
  readonly timeoutMs: number;
  /** The codec of inputs, results and errors (`options.codec`). */
  readonly codec: Codec;
  /** The reply inbox prefix (`options.inboxPrefix`, or the connection's). */
  readonly inboxPrefix: string;
  private readonly pending = new Map<string, Pending>();
  private inbox: string | undefined;
  private subscription: Subscription | undefined;
  private statuses: AsyncIterable<unknown> | undefined;
  private nextId = 0;
  private closed = false;

  /** @throws CqrsError `INVALID_REGISTRATION` for an option out of range (the message names it). */
  constructor(
    /** The connection requests go out on; owned by the caller (closing the client does not close it). */
    readonly connection: NatsConnection,
    options: RemoteClientOptions = {},
  ) {
    if (typeof connection !== 'object' || connection === null || typeof connection.publish !== 'function') {
      throw new CqrsError('INVALID_REGISTRATION', 'RemoteClient: connection must be a NatsConnection');
    }
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX, 'RemoteClient: options.prefix');
    this.maxInFlight = checkCount(options.maxInFlight ?? 1024, 'maxInFlight', 1);
    this.timeoutMs = checkCount(options.timeoutMs ?? 30_000, 'timeoutMs', 1, MAX_DELAY_MS);
    const codec = options.codec ?? taggedJson;
    if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new CqrsError('INVALID_REGISTRATION', 'RemoteClient: options.codec must have encode and decode');
    }
    this.codec = codec;
    // The connection's own option, when it was given one (not part of NatsConnection's type, but kept there).
    const own = (connection as { options?: { inboxPrefix?: unknown } }).options?.inboxPrefix;
    this.inboxPrefix = checkPrefix(
      options.inboxPrefix ?? (typeof own === 'string' && own !== '' ? own : '_INBOX'),
      'RemoteClient: options.inboxPrefix',
    );
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one call to `subject` and settles with the reply: the result, or the error the serving bus
   * produced, rebuilt (a `CqrsError` with its code and message).
   * @throws CqrsError (as a rejection) `OVERLOADED` (`maxInFlight` reached), `NOT_CLONEABLE` (the codec
   * refused the input, or cannot decode the reply), `UNAVAILABLE` (no server on the subject, or the
   * connection is closed or draining), `TIMEOUT` (no reply within `timeoutMs`), `ABORTED` (`signal`
   * aborted), `CLOSED` (this client is closed), and any code the serving bus replied with.
   */
  request(
    subject: string,
    name: string,
    input: unknown,
    metadata: Metadata,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (this.closed) return fail('CLOSED', `${name}: the remote client is closed`, name);
    if (signal?.aborted === true) return Promise.reject(abortError(signal, name));
    if (this.pending.size >= this.maxInFlight) {
      return fail('OVERLOADED', `${name}: ${this.maxInFlight} remote calls in flight already`, name);
    }
    let body: Uint8Array;
    try {
      body = this.codec.encode(input);
    } catch (err) {
      return fail(
        'NOT_CLONEABLE',
        `${name}: the input cannot be encoded (${this.codec.name}): ${message(err)}`,
        name,
        err,
      );
    }
    const h = headers();
    if (this.codec.id !== undefined) h.set(WireHeaders.CODEC, this.codec.id);
    h.set(WireHeaders.METADATA, encodeMetadata(metadata));
    h.set(WireHeaders.TIMEOUT_MS, String(this.timeoutMs));
    const traceparent = metadata[WireHeaders.TRACEPARENT];
    if (traceparent !== undefined) h.set(WireHeaders.TRACEPARENT, traceparent);
    const tracestate = metadata[WireHeaders.TRACESTATE];
    if (tracestate !== undefined) h.set(WireHeaders.TRACESTATE, tracestate);
    const id = (this.nextId++).toString(36);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(
          id,
          undefined,
          new CqrsError('TIMEOUT', `${name}: no reply within ${this.timeoutMs} ms`, { handler: name }),
        );
      }, this.timeoutMs);
      const onAbort =
        signal === undefined ? undefined : () => this.settle(id, undefined, abortError(signal, name));
      this.pending.set(id, { name, subject, resolve, reject, timer, signal, onAbort });
      if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.connection.publish(subject, body, { reply: `${this.replyInbox()}.${id}`, headers: h });
      } catch (err) {
        this.settle(id, undefined, publishError(err, name));
      }
    });
  }

  /** Stops listening for replies; requests still pending are rejected with `CLOSED`. Idempotent. */
  close(): void {
    this.closed = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    // nats.js's status iterators have stop(); without it the watcher ends at the next status or the close.
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
    for (const id of [...this.pending.keys()]) {
      const name = this.pending.get(id)?.name ?? '';
      this.settle(
        id,
        undefined,
        new CqrsError('CLOSED', `${name}: the remote client is closed`, { handler: name }),
      );
    }
  }

  private replyInbox(): string {
    if (this.inbox === undefined) {
      const inbox = createInbox(this.inboxPrefix);
      this.subscription = this.connection.subscribe(`${inbox}.*`, {
        callback: (err, msg) => this.onReply(err, msg),
      });
      this.inbox = inbox;
      // A closed connection answers nothing more: end what waits at once, not at each timer.
      void this.connection.closed().then(() => this.failAll('the NATS connection is closed'));
      void this.watchPermissions();
    }
    return this.inbox;
  }

  /**
   * NATS refuses a publish its permissions forbid with an error on the connection, not on the request: the
   * requests to that subject would wait for their timeout. They are ended at once instead.
   */
  private async watchPermissions(): Promise<void> {
    const statuses = this.connection.status();
    this.statuses = statuses;
    try {
      for await (const status of statuses) {
        if (this.closed) return;
        if (status.type !== 'error') continue;
        const err = status.error as { operation?: unknown; subject?: unknown };
        if (err.operation !== 'publish' || typeof err.subject !== 'string') continue;
        for (const [id, entry] of [...this.pending]) {
          if (entry.subject !== err.subject) continue;
          this.settle(
            id,
            undefined,
            new CqrsError(
              'UNAVAILABLE',
              `${entry.name}: NATS refused the request: no permission to publish to ${err.subject}`,
              { handler: entry.name, cause: status.error },
            ),
          );
        }
      }
    } catch {
      // The connection is closed: closed() above ends what waits.
    }
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err !== null) {
      this.failAll(`the reply subscription failed: ${err.message}`);
      return;
    }
    const id = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const entry = this.pending.get(id);
    // A reply to a request already settled (timed out, aborted): dropped.
    if (entry === undefined) return;
    const name = entry.name;
    const h = msg.headers;
    // NATS itself answers 503 with an empty body when no subscription (no server) listens on the subject.
    if (msg.data.length === 0 && h?.code === 503) {
      this.settle(
        id,
        undefined,
        new CqrsError('UNAVAILABLE', `${name}: no server is serving it (no responders on NATS)`, {
          handler: name,
        }),
      );
      return;
    }
    if (h?.get(WireHeaders.STATUS) === STATUS_ERROR) {
      // Whatever codec it names: an error envelope our codecs cannot read becomes NOT_CLONEABLE there.
      this.settle(id, undefined, decodeError(msg.data, this.codec, name));
      return;
    }
    const replied = h?.get(WireHeaders.CODEC);
    if (this.codec.id !== undefined && replied !== undefined && replied !== '' && replied !== this.codec.id) {
      this.settle(
        id,
        undefined,
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the reply is in ${replied}, this client speaks ${this.codec.id}`,
          {
            handler: name,
          },
        ),
      );
      return;
    }
    let value: unknown;
    try {
      value = this.codec.decode(msg.data);
    } catch (decodeErr) {
      this.settle(
        id,
        undefined,
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the reply cannot be decoded (${this.codec.name}): ${message(decodeErr)}`,
          { handler: name, cause: decodeErr },
        ),
      );
      return;
    }
    this.settle(id, value, undefined);
  }

  private failAll(reason: string): void {
    for (const [id, entry] of [...this.pending]) {
      this.settle(
        id,
        undefined,
        new CqrsError('UNAVAILABLE', `${entry.name}: ${reason}`, { handler: entry.name }),
      );
    }
  }

  /** Ends one request once: off the table, timer and abort listener removed. */
  private settle(id: string, value: unknown, err: CqrsError | undefined): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (entry.onAbort !== undefined) entry.signal?.removeEventListener('abort', entry.onAbort);
    if (err === undefined) entry.resolve(value);
    else entry.reject(markForwarded(err));
  }
}

function fail(
  code: 'CLOSED' | 'OVERLOADED' | 'NOT_CLONEABLE',
  text: string,
  name: string,
  cause?: unknown,
): Promise<never> {
  const details = cause === undefined ? { handler: name } : { handler: name, cause };
  return Promise.reject(markForwarded(new CqrsError(code, text, details)));
}

/** As core settles an aborted call: the reason itself when it is a CqrsError (a timeout's `TIMEOUT`), else `ABORTED`. */
function abortError(signal: AbortSignal, name: string): CqrsError {
  const reason: unknown = signal.reason;
  if (isCqrsError(reason)) return reason;
  return new CqrsError('ABORTED', `${name}: aborted by the caller`, { cause: reason, handler: name });
}

function publishError(err: unknown, name: string): CqrsError {
  const kind = (err as { name?: unknown } | null)?.name;
  if (kind === 'ClosedConnectionError' || kind === 'DrainingConnectionError') {
    return new CqrsError('UNAVAILABLE', `${name}: the NATS connection is closed or draining`, {
      cause: err,
      handler: name,
    });
  }
  // Chiefly a body over the server's max_payload: the input is what cannot be sent.
  return new CqrsError('NOT_CLONEABLE', `${name}: the request cannot be sent: ${message(err)}`, {
    cause: err,
    handler: name,
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkCount(value: unknown, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `RemoteClient: options.${option} must be an integer >= ${min} and <= ${max}, got ${String(value)}`,
    );
  }
  return value;
}
