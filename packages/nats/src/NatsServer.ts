import type { CommandBus, Metadata, QueryBus } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import { CancelToken } from '@cqrs-pool/core/internal';
import type { Service } from '@nats-io/services';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import { BatchReply } from './BatchReply.js';
import type { Framed } from './batchEnvelope.js';
import {
  batchCodec,
  batchedCodecOf,
  decodeFramed,
  readRequestEntry,
  TooManyEntries,
} from './batchEnvelope.js';
import type { Codec } from './Codec.js';
import type { ResolvedService } from './microService.js';
import { startMicroService } from './microService.js';
import type { ReplyBody } from './replyBodies.js';
import { messageOf, metadataRefusal, outcomeBody } from './replyBodies.js';
import { metadataOf, timeoutOf } from './requestHeaders.js';
import type { NatsServerStats, RegisteredService, ServerConfig } from './ServeOptions.js';
import { serveStream, streamWindowOf } from './serveStream.js';
import { MAX_WINDOW } from './streamWire.js';
import { subjectFor } from './subjects.js';
import { encodeError } from './wireError.js';
import { STATUS_ERROR, STATUS_OK, WireHeaders } from './wireHeaders.js';

type Bus = CommandBus | QueryBus;

/** One served handler: its subject and its own counts (the server's are their sums). */
interface Endpoint {
  readonly name: string;
  readonly subject: string;
  readonly counts: NatsServerStats;
}

type Count = keyof NatsServerStats;

function zeroCounts(): NatsServerStats {
  return { received: 0, succeeded: 0, failed: 0, malformed: 0, inFlight: 0 };
}

/**
 * `counts[what] += by`, by name: a keyed update with five names goes megamorphic, and a served call counts
 * four times on two objects (measured: ~1.7 % of a serving node's main thread in the remote bench).
 */
function addCount(counts: NatsServerStats, what: Count, by: number): void {
  switch (what) {
    case 'received':
      counts.received += by;
      break;
    case 'succeeded':
      counts.succeeded += by;
      break;
    case 'failed':
      counts.failed += by;
      break;
    case 'malformed':
      counts.malformed += by;
      break;
    case 'inFlight':
      counts.inFlight += by;
      break;
  }
}

/**
 * One bus's handlers served on NATS, made by {@link serve}. Each request is decoded, run with
 * `bus.execute(name, input, { metadata, signal })` — through the bus's middleware and, for `inWorker`
 * handlers, its pool — and answered with the result or the error as plain data. A batch request (many
 * calls in one message, see `RemoteClientOptions.batching`) is taken whole: its calls enter the bus in
 * their order, each is answered on its own, in reply chunks as they settle, and counted as a call.
 */
export class NatsServer {
  /** The subjects served, one per handler. */
  readonly subjects: readonly string[];
  /**
   * The node as a NATS micro service: resolves with its name, id and version once registered, or with
   * `undefined` when it is not (the option `service: false`, or registration failed). Never rejects.
   */
  readonly service: Promise<RegisteredService | undefined>;
  private readonly subscriptions: Subscription[] = [];
  private readonly endpoints: readonly Endpoint[];
  private readonly counts: NatsServerStats = zeroCounts();
  private stopping: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private active: Service | undefined;
  private failedRegistration: Error | undefined;
  private snapshot: ReturnType<Bus['getMetrics']> | undefined;
  /** Batches with outcomes gathered and not sent yet: sent together at the end of the turn (or by stop()). */
  private readonly replies = new Set<BatchReply>();
  private repliesDue: NodeJS.Immediate | undefined;
  private batchMessages = 0;
  private batchedCalls = 0;

  private readonly codec: Codec;

  /** @internal Use {@link serve}. */
  constructor(
    private readonly connection: NatsConnection,
    private readonly bus: Bus,
    private readonly config: ServerConfig,
  ) {
    this.codec = config.codec;
    this.endpoints = config.names.map((name) => ({
      name,
      subject: subjectFor(config.prefix, bus.kind, name),
      counts: zeroCounts(),
    }));
    this.subjects = this.endpoints.map((e) => e.subject);
    // Our own subscriptions first, at once: `serve(); await nc.flush()` must find the node serving. The micro
    // service's take over once it is registered (below).
    this.subscribeAll();
    this.service = config.service === undefined ? Promise.resolve(undefined) : this.register(config.service);
  }

  /** Why registering as a micro service failed, if it did: the node serves on, unlisted. */
  get registrationError(): Error | undefined {
    return this.failedRegistration;
  }

  /**
   * Registers the micro service, its endpoints taking the place of our own subscriptions. The services
   * library subscribes each endpoint itself (no endpoint is only listed), so the handover has both
   * subscriptions in the queue group for a moment — each request still goes to one of them, and both run it
   * the same way — then ours are drained.
   */
  private async register(options: ResolvedService): Promise<RegisteredService | undefined> {
    let service: Service;
    try {
      service = await startMicroService(this.connection, {
        options,
        kind: this.bus.kind,
        prefix: this.config.prefix,
        queue: this.config.queue,
        codecId: this.codec.id,
        endpoints: this.endpoints.map((endpoint) => ({
          name: endpoint.name,
          subject: endpoint.subject,
          handle: (err: Error | null, msg: Msg) => this.onRequest(endpoint, err, msg),
        })),
        stats: (subject) => this.statsOf(subject),
      });
    } catch (err) {
      this.failedRegistration = err instanceof Error ? err : new Error(String(err));
      return undefined;
    }
    this.active = service;
    const own = this.subscriptions.splice(0);
    await Promise.all(own.map((s) => s.drain().catch(() => undefined)));
    // Stopped later by an error (a subscription failing): serve on, on our own subscriptions.
    void service.stopped.then((err) => {
      if (err === null || this.stopping !== undefined || this.connection.isClosed()) return;
      this.failedRegistration = err;
      this.active = undefined;
      try {
        this.subscribeAll();
      } catch {
        // The connection closed meanwhile: nothing to serve on.
      }
    });
    const identity = service.ping();
    return { name: identity.name, id: identity.id, version: identity.version };
  }

  /** An endpoint's `data` in `$SRV.STATS`: this node's counts for it, and its handler's shared-memory metrics. */
  private statsOf(subject: string): unknown {
    const endpoint = this.endpoints.find((e) => e.subject === subject);
    if (endpoint === undefined) return null;
    // One snapshot for all the endpoints of one STATS request (the library asks endpoint by endpoint).
    if (this.snapshot === undefined) {
      this.snapshot = this.bus.getMetrics();
      setImmediate(() => {
        this.snapshot = undefined;
      });
    }
    const handler = this.snapshot.handlers[endpoint.name];
    return { requests: { ...endpoint.counts }, ...(handler === undefined ? {} : { handler }) };
  }

  private subscribeAll(): void {
    for (const endpoint of this.endpoints) {
      this.subscriptions.push(
        this.connection.subscribe(endpoint.subject, {
          queue: this.config.queue,
          callback: (err, msg) => this.onRequest(endpoint, err, msg),
        }),
      );
    }
  }

  private count(endpoint: Endpoint, what: Count, by = 1): void {
    addCount(this.counts, what, by);
    addCount(endpoint.counts, what, by);
  }

  /** A copy of the counts so far (calls, whether they came alone or in batches). */
  get stats(): NatsServerStats {
    return { ...this.counts };
  }

  /** Batch requests taken so far, and the calls they carried (their calls are in `stats` too). */
  get batchStats(): { messages: number; calls: number } {
    return { messages: this.batchMessages, calls: this.batchedCalls };
  }

  /**
   * Graceful stop: stops taking requests (the queue group sends new ones to the other members), lets the
   * requests already delivered and those running finish and be answered, then resolves. Idempotent. Leaves
   * the connection and the bus open: they are the caller's.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A registration under way finishes first, so that nothing subscribes after the drain.
      await this.service;
      // drain(): unsubscribe, and still deliver what the NATS server had sent before it saw that. The
      // service's stop() drains its endpoints' and its $SRV subscriptions.
      await Promise.all([
        ...this.subscriptions.map((s) => s.drain().catch(() => undefined)),
        this.active?.stop().catch(() => undefined),
      ]);
      if (this.counts.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.flushReplies();
      if (!this.connection.isClosed()) await this.connection.flush().catch(() => undefined);
    })();
    return this.stopping;
  }

  private onRequest(endpoint: Endpoint, err: Error | null, msg: Msg): void {
    if (err !== null) return;
    const batched = batchedCodecOf(msg.headers?.get(WireHeaders.CODEC));
    if (batched !== undefined) {
      this.onBatch(endpoint, msg, batched);
      return;
    }
    const name = endpoint.name;
    this.count(endpoint, 'received');
    if (msg.reply === undefined || msg.reply === '') {
      // A plain publish, not a request: there is no one to answer, and running a command nobody awaits
      // would hide it from every caller's metrics and errors.
      this.count(endpoint, 'malformed');
      return;
    }
    if (this.counts.inFlight >= this.config.maxInFlight) {
      this.refuse(
        endpoint,
        msg,
        new CqrsError('OVERLOADED', `${name}: ${this.config.maxInFlight} calls in flight on this node`, {
          handler: name,
        }),
      );
      return;
    }
    const codecId = this.codec.id;
    const asked = msg.headers?.get(WireHeaders.CODEC);
    if (codecId !== undefined && asked !== undefined && asked !== '' && asked !== codecId) {
      // A body in another codec could decode to something else entirely (a plain-JSON `{"$t":…}` read as a
      // tag): refused unread. The refusal has no field any codec of ours would read differently.
      this.count(endpoint, 'malformed');
      this.refuse(
        endpoint,
        msg,
        new CqrsError('VALIDATION', `${name}: this node speaks ${codecId}, the request is ${asked}`, {
          handler: name,
        }),
      );
      return;
    }
    let input: unknown;
    let metadata: Metadata;
    let timeoutMs: number | undefined;
    let window: number | undefined;
    try {
      metadata = metadataOf(msg.headers);
      timeoutMs = timeoutOf(msg.headers);
      window = streamWindowOf(msg.headers, MAX_WINDOW);
      input = this.codec.decode(msg.data);
    } catch (decodeErr) {
      this.count(endpoint, 'malformed');
      const text = messageOf(decodeErr);
      this.refuse(
        endpoint,
        msg,
        new CqrsError('VALIDATION', `${name}: malformed request: ${text}`, { handler: name }),
      );
      return;
    }
    const filter = this.config.metadataFilter;
    if (filter !== undefined) {
      try {
        metadata = filter(metadata, { name, subject: msg.subject, headers: msg.headers });
      } catch (refusal) {
        this.refuse(endpoint, msg, metadataRefusal(refusal, name));
        return;
      }
    }
    this.count(endpoint, 'inFlight');
    if (window !== undefined) {
      // A streaming query (docs/wire-protocol.md, "Streams"): its deadline is an idle bound, not the whole.
      serveStream({
        connection: this.connection,
        bus: this.bus,
        name,
        msg,
        input,
        metadata,
        window,
        idleMs: timeoutMs,
        codec: this.codec,
        stacks: this.config.stacks,
        done: (ok) => {
          this.count(endpoint, ok ? 'succeeded' : 'failed');
          this.ended(endpoint);
        },
      });
      return;
    }
    // Past the caller's own deadline nobody reads the reply: the handler is told to stop (ctx.signal). A
    // timer cleared when the call settles, not AbortSignal.timeout(), whose timer would outlive every call
    // by the whole deadline (at thousands of calls a second, that many live timers).
    let deadline: NodeJS.Timeout | undefined;
    let options: { metadata: Metadata; signal?: AbortSignal } = { metadata };
    if (timeoutMs !== undefined) {
      const controller = new AbortController();
      // A CqrsError as the reason: the bus settles with it as it is (TIMEOUT), as with its own timeout().
      deadline = setTimeout(
        () =>
          controller.abort(
            new CqrsError('TIMEOUT', `${name}: the caller's deadline (${timeoutMs} ms) passed`, {
              handler: name,
            }),
          ),
        timeoutMs,
      );
      options = { metadata, signal: controller.signal };
    }
    let pending: Promise<unknown>;
    try {
      pending = this.bus.execute(name, input, options);
    } catch (err) {
      pending = Promise.reject(err);
    }
    // Neither continuation may throw: they run detached, where a throw would be an unhandled rejection (the
    // end of the process), and the call would stay in flight for good.
    pending.then(
      (value) => {
        clearTimeout(deadline);
        this.settle(endpoint, msg, true, value);
      },
      (callErr: unknown) => {
        clearTimeout(deadline);
        this.settle(endpoint, msg, false, callErr);
      },
    );
  }

  /**
   * A batch request (docs/wire-protocol.md, "Batches"): read whole, then each call admitted as a single
   * request would be (in-flight bound, its input decoded within the codec's limits, its metadata through the
   * node's policy) and run, in order — so calls of one ordering key enter the bus in the order sent. Each
   * is answered on its own, in reply chunks. Its deadline, when it has one, is answered with `TIMEOUT` at
   * once when it passes, and aborts the call as a single request's does, by a cancel token rather than an
   * abort signal of its own (a few µs each on this hot path): a call still waiting for a thread is dropped,
   * a handler is told, and the node stops counting the call in flight.
   */
  private onBatch(endpoint: Endpoint, msg: Msg, asked: string): void {
    const name = endpoint.name;
    if (msg.reply === undefined || msg.reply === '') {
      this.count(endpoint, 'received');
      this.count(endpoint, 'malformed');
      return;
    }
    const codecId = this.codec.id;
    const replyCodec = batchCodec(codecId);
    if (codecId !== undefined && asked !== '' && asked !== codecId) {
      this.refuseBatch(endpoint, msg, 1, replyCodec, `this node speaks ${codecId}, the batch is ${asked}`);
      return;
    }
    const max = this.config.maxBatchSize;
    let framed: Framed;
    try {
      framed = decodeFramed(msg.data, 0, max);
    } catch (err) {
      if (err instanceof TooManyEntries) {
        const size = err.entries;
        this.refuseBatch(
          endpoint,
          msg,
          size,
          replyCodec,
          `a batch of ${size} calls, over this node's maxBatchSize of ${max}`,
        );
      } else {
        this.refuseBatch(endpoint, msg, 1, replyCodec, `malformed batch: ${messageOf(err)}`);
      }
      return;
    }
    const size = framed.parts.length;
    if (size === 0) {
      this.refuseBatch(endpoint, msg, 1, replyCodec, 'malformed batch: it holds no call');
      return;
    }
    this.batchMessages++;
    this.batchedCalls += size;
    // A call with a deadline runs under a cancel token, aborted when the deadline passes.
    const deadlines: (CancelToken | undefined)[] = new Array(size);
    const reply: BatchReply = new BatchReply(
      msg,
      replyCodec,
      size,
      this.connection.info?.max_payload ?? 1024 * 1024,
      (index, timeoutMs) => {
        const err = new CqrsError('TIMEOUT', `${name}: the caller's deadline (${timeoutMs} ms) passed`, {
          handler: name,
        });
        this.count(endpoint, 'failed');
        reply.add(index, STATUS_ERROR, this.errorBody(err));
        deadlines[index]?.abort(err);
      },
      this.replyDue,
    );
    for (let i = 0; i < size; i++) {
      this.admitBatchCall(
        endpoint,
        msg,
        reply,
        i,
        framed.entries[i] as unknown[],
        framed.parts[i] as Uint8Array,
        deadlines,
      );
    }
  }

  private readonly replyDue = (reply: BatchReply): void => {
    this.replies.add(reply);
    this.repliesDue ??= setImmediate(this.flushReplies);
  };

  private readonly flushReplies = (): void => {
    if (this.repliesDue !== undefined) clearImmediate(this.repliesDue);
    this.repliesDue = undefined;
    const replies = [...this.replies];
    this.replies.clear();
    for (const reply of replies) reply.flush();
  };

  /** Refuses a whole batch unread (one error reply for all its calls), counting `calls` calls. */
  private refuseBatch(endpoint: Endpoint, msg: Msg, calls: number, replyCodec: string, why: string): void {
    const name = endpoint.name;
    this.count(endpoint, 'received', calls);
    this.count(endpoint, 'malformed', calls);
    this.count(endpoint, 'failed', calls);
    const h = headers();
    h.set(WireHeaders.STATUS, STATUS_ERROR);
    h.set(WireHeaders.CODEC, replyCodec);
    try {
      msg.respond(this.errorBody(new CqrsError('VALIDATION', `${name}: ${why}`, { handler: name })), {
        headers: h,
      });
    } catch {
      // A closed connection answers nothing more.
    }
  }

  private admitBatchCall(
    endpoint: Endpoint,
    msg: Msg,
    reply: BatchReply,
    index: number,
    entry: readonly unknown[],
    part: Uint8Array,
    deadlines: (CancelToken | undefined)[],
  ): void {
    const name = endpoint.name;
    this.count(endpoint, 'received');
    if (this.counts.inFlight >= this.config.maxInFlight) {
      this.refuseCall(
        endpoint,
        reply,
        index,
        new CqrsError('OVERLOADED', `${name}: ${this.config.maxInFlight} calls in flight on this node`, {
          handler: name,
        }),
      );
      return;
    }
    let input: unknown;
    let metadata: Metadata;
    let timeoutMs: number | undefined;
    try {
      ({ metadata, timeoutMs } = readRequestEntry(entry));
      input = this.codec.decode(part);
    } catch (decodeErr) {
      this.count(endpoint, 'malformed');
      this.refuseCall(
        endpoint,
        reply,
        index,
        new CqrsError('VALIDATION', `${name}: malformed request: ${messageOf(decodeErr)}`, { handler: name }),
      );
      return;
    }
    const filter = this.config.metadataFilter;
    if (filter !== undefined) {
      try {
        metadata = filter(metadata, { name, subject: msg.subject, headers: msg.headers });
      } catch (refusal) {
        this.refuseCall(endpoint, reply, index, metadataRefusal(refusal, name));
        return;
      }
    }
    this.count(endpoint, 'inFlight');
    let pending: Promise<unknown>;
    try {
      if (timeoutMs === undefined) pending = this.bus.execute(name, input, { metadata });
      else {
        reply.watch(index, timeoutMs);
        const cancel = new CancelToken();
        deadlines[index] = cancel;
        pending = this.bus.executeCancellable(name, input, metadata, cancel);
      }
    } catch (err) {
      pending = Promise.reject(err);
    }
    // As for a single call: neither continuation may throw.
    pending.then(
      (value) => this.settleBatchCall(endpoint, reply, index, true, value),
      (callErr: unknown) => this.settleBatchCall(endpoint, reply, index, false, callErr),
    );
  }

  private refuseCall(endpoint: Endpoint, reply: BatchReply, index: number, err: CqrsError): void {
    this.count(endpoint, 'failed');
    reply.add(index, STATUS_ERROR, this.errorBody(err));
  }

  /** A batch call that ran: answered in its batch's next chunk unless its deadline answered it; never throws. */
  private settleBatchCall(
    endpoint: Endpoint,
    reply: BatchReply,
    index: number,
    ok: boolean,
    outcome: unknown,
  ): void {
    const name = endpoint.name;
    try {
      if (reply.isAnswered(index)) return;
      let { status, body } = this.outcomeBody(name, ok, outcome);
      if (body.byteLength > reply.maxPart) {
        // Over the connection's max_payload even alone: the caller learns at once rather than at its timeout.
        const what = status === STATUS_OK ? 'result' : 'error';
        body = this.errorBody(
          new CqrsError(
            status === STATUS_OK ? 'NOT_CLONEABLE' : 'HANDLER_FAILED',
            `${name}: the ${what} cannot be sent (${body.byteLength} bytes): over the connection's max_payload`,
            { handler: name },
          ),
        );
        status = STATUS_ERROR;
      }
      this.count(endpoint, status === STATUS_OK ? 'succeeded' : 'failed');
      reply.add(index, status, body);
    } catch {
      // Not expected (outcomeBody and add never throw).
    } finally {
      this.ended(endpoint);
    }
  }

  /** Answers a call that ran, with its result or its error, and counts it; never throws. */
  private settle(endpoint: Endpoint, msg: Msg, ok: boolean, outcome: unknown): void {
    const name = endpoint.name;
    let succeeded = false;
    try {
      const { status, body } = this.outcomeBody(name, ok, outcome);
      const sent = this.answer(msg, status, body, name);
      succeeded = sent && status === STATUS_OK;
    } catch {
      // Not expected (outcomeBody and answer never throw); nothing is left to answer with.
    } finally {
      this.count(endpoint, succeeded ? 'succeeded' : 'failed');
      this.ended(endpoint);
    }
  }

  /** A call the node ran is over (answered or not): one fewer in flight. */
  private ended(endpoint: Endpoint): void {
    this.count(endpoint, 'inFlight', -1);
    if (this.counts.inFlight === 0) this.drained?.();
  }

  private outcomeBody(name: string, ok: boolean, outcome: unknown): ReplyBody {
    return outcomeBody(name, ok, outcome, this.codec, this.config.stacks);
  }

  private errorBody(err: unknown): Uint8Array {
    return encodeError(err, this.codec, this.config.stacks);
  }

  private refuse(endpoint: Endpoint, msg: Msg, err: CqrsError): void {
    this.count(endpoint, 'failed');
    this.answer(msg, STATUS_ERROR, this.errorBody(err));
  }

  /**
   * Sends a reply; never throws. A reply too large for the connection (NATS `max_payload`) is replaced by a
   * short error reply — `NOT_CLONEABLE` for a result — so the caller learns at once rather than at its
   * timeout. Returns whether the reply went out as given.
   */
  private answer(msg: Msg, status: string, body: Uint8Array, name = '', last = false): boolean {
    const h = headers();
    h.set(WireHeaders.STATUS, status);
    if (this.codec.id !== undefined) h.set(WireHeaders.CODEC, this.codec.id);
    try {
      msg.respond(body, { headers: h });
      return true;
    } catch (err) {
      // A closed connection answers nothing more: the caller's timeout (or its connection's loss) ends its
      // wait. Otherwise the reply itself was refused, most likely for its size.
      if (last || this.connection.isClosed()) return false;
      const what = status === STATUS_OK ? 'result' : 'error';
      const replacement = new CqrsError(
        status === STATUS_OK ? 'NOT_CLONEABLE' : 'HANDLER_FAILED',
        `${name}: the ${what} cannot be sent (${body.byteLength} bytes): ${messageOf(err)}`,
        { handler: name },
      );
      this.answer(msg, STATUS_ERROR, encodeError(replacement, this.codec, this.config.stacks), name, true);
      return false;
    }
  }
}
