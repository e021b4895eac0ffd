import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox, headers } from '@nats-io/transport-node';
import {
  batchCodec,
  batchedCodecOf,
  decodeReplyChunk,
  encodeFramed,
  requestEntry,
  STATUS_BATCH,
} from './batchEnvelope.js';
import { CallTable } from './CallTable.js';
import type { Codec } from './Codec.js';
import {
  abandoned,
  abortError,
  closedError,
  fail,
  message,
  noResponders,
  notCloneable,
  otherCodec,
  overloaded,
  publishError,
  unavailable,
} from './clientErrors.js';
import { encodeMetadata } from './metadataHeader.js';
import type { Cancellable, RemoteCall, SentBatch } from './RemoteCall.js';
import type { RemoteClientOptions } from './RemoteClientOptions.js';
import { batchLimits, checkCount } from './RemoteClientOptions.js';
import type { BatchLimits, Lane } from './RequestGatherer.js';
import { RequestGatherer } from './RequestGatherer.js';
import { checkPrefix, DEFAULT_PREFIX } from './subjects.js';
import { taggedJson } from './taggedJson.js';
import { decodeError } from './wireError.js';
import { STATUS_ERROR, WireHeaders } from './wireHeaders.js';

const MAX_DELAY_MS = 2 ** 31 - 1;
/** How long a subject's calls go one by one after a node answered that it does not read batches. */
const UNBATCHED_MS = 60_000;

/** What a {@link RemoteClient} knows of a remote stream open on it (StreamSession). @internal */
export interface OpenStream {
  /** The stream's query name, for the errors that end it. */
  readonly name: string;
  /** Ends the stream with `err` (after the items it holds); a serving node still at it is told to stop. */
  abandon(err: CqrsError): void;
}

/**
 * Sends calls over NATS request/reply and matches the replies: one inbox subscription for all its requests
 * (made on first use), a table of pending calls bounded by `maxInFlight`, one timer for their deadlines.
 * Calls to one subject made together travel in batches (see {@link RemoteClientOptions.batching}), each
 * still settled on its own. A call the caller abandons (abort, timeout) leaves the table at once; its late
 * reply is dropped. Share one client among several `remote()` handlers to share one bound.
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
  /** The batching limits (`options.batching`), or `false` when every call goes alone. */
  readonly batching: BatchLimits | false;
  private readonly table: CallTable;
  private readonly gatherer: RequestGatherer | undefined;
  private inbox: string | undefined;
  private subscription: Subscription | undefined;
  private statuses: AsyncIterable<unknown> | undefined;
  private nextId = 0;
  private closed = false;
  /** Remote streams open on this client: each holds a place under `maxInFlight` until it ends. */
  private readonly streams = new Set<OpenStream>();
  private watchingConnection = false;
  private batchMessages = 0;
  private batchedCalls = 0;

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
    this.table = new CallTable(this.timeoutMs);
    const limits = batchLimits(options.batching);
    this.batching = limits ?? false;
    this.gatherer =
      limits === undefined
        ? undefined
        : new RequestGatherer(limits, {
            live: (call) => !call.settled && !this.table.dropIfCancelled(call),
            one: (call) => this.sendOne(call),
            many: (lane, calls) => this.sendMany(lane, calls),
            // Room for the headers of a batch request.
            maxBytes: () => (this.connection.info?.max_payload ?? 1024 * 1024) - 512,
          });
  }

  /** Calls waiting for their reply (held back for a batch included), and remote streams open. */
  get inFlight(): number {
    this.table.sweepCancelled();
    return this.table.size + this.streams.size;
  }

  /**
   * A remote stream opens: it takes a place under `maxInFlight` until {@link streamEnded}, and ends with the
   * client (`CLOSED`) or its connection (`UNAVAILABLE`). Returns the error to fail it with instead, when the
   * client is closed or full. @internal
   */
  openStream(stream: OpenStream, name: string): CqrsError | undefined {
    if (this.closed) return closedError(name);
    if (this.full()) return overloaded(name, this.maxInFlight);
    this.streams.add(stream);
    this.watchConnection();
    return undefined;
  }

  /** A remote stream ended (read to its end, failed, or stopped): its place is free. @internal */
  streamEnded(stream: OpenStream): void {
    this.streams.delete(stream);
  }

  /**
   * Batching so far: batch request messages sent, and the calls they carried (calls sent alone are in
   * neither). `calls / messages` is the mean batch size.
   */
  get batchStats(): { messages: number; calls: number } {
    return { messages: this.batchMessages, calls: this.batchedCalls };
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
    return this.start(subject, name, input, metadata, signal, undefined);
  }

  /**
   * `request` for `remote()`: the calling handler's context stands for its signal. Reading `ctx.signal` makes
   * an AbortSignal per call, and listening to it costs more again — together more than the rest of a
   * batched call on both sides. `ctx.isCancelled()` is read instead where it matters: before a held call
   * is sent, and before this client's table is counted (`inFlight`, the `maxInFlight` bound), so an
   * abandoned call leaves it as soon as anything could tell. The caller itself is released at once by its
   * bus, which races the call against its cancellation.
   * @internal
   */
  forward(
    subject: string,
    name: string,
    input: unknown,
    metadata: Metadata,
    ctx: Cancellable,
  ): Promise<unknown> {
    return this.start(subject, name, input, metadata, undefined, ctx);
  }

  /** Stops listening for replies; calls still pending and streams still open end with `CLOSED`. Idempotent. */
  close(): void {
    this.closed = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    // nats.js's status iterators have stop(); without it the watcher ends at the next status or the close.
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
    this.gatherer?.clear();
    for (const call of this.table.all()) {
      this.table.settle(call, undefined, closedError(call.name));
    }
    this.abandonStreams(closedError);
  }

  private start(
    subject: string,
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    ctx: Cancellable | undefined,
  ): Promise<unknown> {
    if (this.closed) return fail('CLOSED', `${name}: the remote client is closed`, name);
    if (signal?.aborted === true) return Promise.reject(abortError(signal, name));
    if (ctx?.isCancelled() === true) return Promise.reject(abandoned(name));
    if (this.full()) return Promise.reject(overloaded(name, this.maxInFlight));
    let body: Uint8Array;
    let metadataJson: string | undefined;
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
    try {
      metadataJson = isEmpty(metadata) ? undefined : encodeMetadata(metadata);
    } catch (err) {
      return fail('NOT_CLONEABLE', `${name}: the metadata cannot be encoded: ${message(err)}`, name, err);
    }
    return new Promise<unknown>((resolve, reject) => {
      const call: RemoteCall = {
        name,
        subject,
        body,
        metadata,
        metadataJson,
        deadline: performance.now() + this.timeoutMs,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        ctx,
        lane: this.gatherer?.laneFor(subject),
        token: undefined,
        batch: undefined,
        index: 0,
        settled: false,
      };
      this.table.add(call);
      if (signal !== undefined) {
        call.onAbort = () => this.table.settle(call, undefined, abortError(signal, name));
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      if (this.gatherer === undefined) this.sendOne(call);
      else this.gatherer.add(call);
    });
  }

  /** The ms the caller still waits for `call`, sent as its deadline. */
  private remaining(call: RemoteCall, now: number): number {
    return Math.max(1, Math.min(this.timeoutMs, Math.ceil(call.deadline - now)));
  }

  /** Sends a call alone, as protocol version 1 has it (headers, the input as the body). */
  private sendOne(call: RemoteCall): void {
    const token = (this.nextId++).toString(36);
    this.table.sentAlone(call, token);
    const h = headers();
    if (this.codec.id !== undefined) h.set(WireHeaders.CODEC, this.codec.id);
    h.set(WireHeaders.METADATA, call.metadataJson ?? '{}');
    h.set(WireHeaders.TIMEOUT_MS, String(this.remaining(call, performance.now())));
    const traceparent = call.metadata[WireHeaders.TRACEPARENT];
    if (traceparent !== undefined) h.set(WireHeaders.TRACEPARENT, traceparent);
    const tracestate = call.metadata[WireHeaders.TRACESTATE];
    if (tracestate !== undefined) h.set(WireHeaders.TRACESTATE, tracestate);
    try {
      this.connection.publish(call.subject, call.body, {
        reply: `${this.replyInbox()}.${token}`,
        headers: h,
      });
    } catch (err) {
      this.table.settle(call, undefined, publishError(err, call.name));
    }
  }

  /** Sends calls to one subject as one batch request (docs/wire-protocol.md, "Batches"). */
  private sendMany(lane: Lane, calls: RemoteCall[]): void {
    const batch: SentBatch = { token: (this.nextId++).toString(36), lane, calls, open: calls.length };
    this.table.sentInBatch(batch);
    this.batchMessages++;
    this.batchedCalls += calls.length;
    const now = performance.now();
    const entries = calls.map((call) =>
      requestEntry(call.body.byteLength, this.remaining(call, now), call.metadataJson),
    );
    const h = headers();
    h.set(WireHeaders.CODEC, batchCodec(this.codec.id));
    try {
      this.connection.publish(
        lane.subject,
        encodeFramed(
          entries,
          calls.map((call) => call.body),
        ),
        { reply: `${this.replyInbox()}.${batch.token}`, headers: h },
      );
    } catch (err) {
      for (const call of calls) this.table.settle(call, undefined, publishError(err, call.name));
    }
  }

  private replyInbox(): string {
    if (this.inbox === undefined) {
      const inbox = createInbox(this.inboxPrefix);
      this.subscription = this.connection.subscribe(`${inbox}.*`, {
        callback: (err, msg) => this.onReply(err, msg),
      });
      this.inbox = inbox;
      this.watchConnection();
      void this.watchPermissions();
    }
    return this.inbox;
  }

  /**
   * NATS refuses a publish its permissions forbid with an error on the connection, not on the request: the
   * calls to that subject would wait for their timeout. They are ended at once instead.
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
        for (const call of this.table.all()) {
          if (call.subject !== err.subject) continue;
          this.table.settle(
            call,
            undefined,
            unavailable(
              call.name,
              `NATS refused the request: no permission to publish to ${err.subject}`,
              status.error,
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
    const token = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const single = this.table.single(token);
    if (single !== undefined) {
      this.settleFromReply(single, msg);
      return;
    }
    const batch = this.table.batch(token);
    // Otherwise a reply to something already settled (timed out, aborted): dropped.
    if (batch !== undefined) this.onBatchReply(batch, msg);
  }

  /** A single call's reply: its result, or its error. */
  private settleFromReply(call: RemoteCall, msg: Msg): void {
    const name = call.name;
    const h = msg.headers;
    // NATS itself answers 503 with an empty body when no subscription (no server) listens on the subject.
    if (msg.data.length === 0 && h?.code === 503) {
      this.table.settle(call, undefined, noResponders(name));
      return;
    }
    if (h?.get(WireHeaders.STATUS) === STATUS_ERROR) {
      // Whatever codec it names: an error envelope our codecs cannot read becomes NOT_CLONEABLE there.
      this.table.settle(call, undefined, decodeError(msg.data, this.codec, name));
      return;
    }
    const replied = h?.get(WireHeaders.CODEC);
    if (this.codec.id !== undefined && replied !== undefined && replied !== '' && replied !== this.codec.id) {
      this.table.settle(call, undefined, otherCodec(name, replied, this.codec.id));
      return;
    }
    this.settleWithValue(call, msg.data);
  }

  private settleWithValue(call: RemoteCall, data: Uint8Array): void {
    let value: unknown;
    try {
      value = this.codec.decode(data);
    } catch (decodeErr) {
      this.table.settle(
        call,
        undefined,
        notCloneable(
          call.name,
          `the reply cannot be decoded (${this.codec.name}): ${message(decodeErr)}`,
          decodeErr,
        ),
      );
      return;
    }
    this.table.settle(call, value, undefined);
  }

  /**
   * A reply to a batch: a chunk of outcomes (each settles its call), an error for the whole batch (every
   * call still open gets it), NATS's no-responders, or the refusal of a node that does not read batches.
   */
  private onBatchReply(batch: SentBatch, msg: Msg): void {
    const h = msg.headers;
    const status = h?.get(WireHeaders.STATUS);
    const codecHeader = h?.get(WireHeaders.CODEC);
    const open = this.table.open(batch);
    if (msg.data.length === 0 && h?.code === 503) {
      for (const call of open) this.table.settle(call, undefined, noResponders(call.name));
    } else if (status === STATUS_BATCH) {
      this.settleChunk(batch, msg.data, batchedCodecOf(codecHeader));
    } else if (status === STATUS_ERROR && codecHeader && batchedCodecOf(codecHeader) === undefined) {
      // A node that does not read batches (protocol version 1 only) refuses one unread, for the codec it
      // names: nothing ran. Its calls go again, alone, and the subject's next ones too for a while.
      this.gatherer?.unbatch(batch.lane, UNBATCHED_MS);
      for (const call of open) {
        this.table.detach(call);
        this.sendOne(call);
      }
    } else if (status === STATUS_ERROR) {
      for (const call of open)
        this.table.settle(call, undefined, decodeError(msg.data, this.codec, call.name));
    } else {
      for (const call of open) {
        this.table.settle(
          call,
          undefined,
          notCloneable(call.name, 'the reply to a batch is not a batch reply'),
        );
      }
    }
    this.gatherer?.replied(batch.lane);
  }

  private settleChunk(batch: SentBatch, data: Uint8Array, replied: string | undefined): void {
    if (this.codec.id !== undefined && replied !== undefined && replied !== '' && replied !== this.codec.id) {
      for (const call of this.table.open(batch)) {
        this.table.settle(call, undefined, otherCodec(call.name, replied, this.codec.id));
      }
      return;
    }
    let outcomes: ReturnType<typeof decodeReplyChunk>;
    try {
      outcomes = decodeReplyChunk(data);
    } catch (err) {
      // The rest of the batch would never be read either: ended now, not at the timeout.
      for (const call of this.table.open(batch)) {
        this.table.settle(
          call,
          undefined,
          notCloneable(call.name, `a batch reply cannot be read: ${message(err)}`, err),
        );
      }
      return;
    }
    for (const outcome of outcomes) {
      const call = batch.calls[outcome.index];
      // One settled meanwhile (timed out, aborted) or an index the batch never had: dropped.
      if (call === undefined || call.settled || call.batch !== batch) continue;
      if (outcome.ok) this.settleWithValue(call, outcome.body);
      else this.table.settle(call, undefined, decodeError(outcome.body, this.codec, call.name));
    }
  }

  private failAll(reason: string): void {
    for (const call of this.table.all()) this.table.settle(call, undefined, unavailable(call.name, reason));
  }

  /** True when `maxInFlight` calls and streams are out (calls abandoned meanwhile swept first). */
  private full(): boolean {
    if (this.table.size + this.streams.size < this.maxInFlight) return false;
    this.table.sweepCancelled();
    return this.table.size + this.streams.size >= this.maxInFlight;
  }

  /** Ends every open stream with the error `errorFor` makes for its name. */
  private abandonStreams(errorFor: (name: string) => CqrsError): void {
    const open = [...this.streams];
    this.streams.clear();
    for (const stream of open) stream.abandon(errorFor(stream.name));
  }

  /** A closed connection answers nothing more: what waits on it ends at once, not at each timer. */
  private watchConnection(): void {
    if (this.watchingConnection) return;
    this.watchingConnection = true;
    void this.connection.closed().then(() => {
      const reason = 'the NATS connection is closed';
      this.failAll(reason);
      this.abandonStreams((name) => unavailable(name, reason));
    });
  }
}

function isEmpty(metadata: Metadata): boolean {
  for (const _ in metadata) return false;
  return true;
}
