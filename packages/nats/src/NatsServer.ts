import type { CommandBus, Metadata, QueryBus } from '@cqrs-pool/core';
import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import type { Service } from '@nats-io/services';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import type { Codec } from './Codec.js';
import type { ResolvedService } from './microService.js';
import { startMicroService } from './microService.js';
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
 * One bus's handlers served on NATS, made by {@link serve}. Each request is decoded, run with
 * `bus.execute(name, input, { metadata, signal })` — through the bus's middleware and, for `inWorker`
 * handlers, its pool — and answered with the result or the error as plain data.
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
    this.counts[what] += by;
    endpoint.counts[what] += by;
  }

  /** A copy of the counts so far. */
  get stats(): NatsServerStats {
    return { ...this.counts };
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
      if (!this.connection.isClosed()) await this.connection.flush().catch(() => undefined);
    })();
    return this.stopping;
  }

  private onRequest(endpoint: Endpoint, err: Error | null, msg: Msg): void {
    if (err !== null) return;
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
        this.refuse(
          endpoint,
          msg,
          isCqrsError(refusal)
            ? refusal
            : new CqrsError('VALIDATION', `${name}: metadata refused: ${messageOf(refusal)}`, {
                handler: name,
              }),
        );
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
        done: (ok) => this.ended(endpoint, ok),
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

  /** Answers a call that ran, with its result or its error, and counts it; never throws. */
  private settle(endpoint: Endpoint, msg: Msg, ok: boolean, outcome: unknown): void {
    const name = endpoint.name;
    let succeeded = false;
    try {
      if (ok) {
        let body: Uint8Array | undefined;
        try {
          body = this.codec.encode(outcome);
        } catch (encodeErr) {
          this.answer(
            msg,
            STATUS_ERROR,
            encodeError(cannotEncode(name, this.codec, encodeErr), this.codec, this.config.stacks),
            name,
          );
        }
        if (body !== undefined) succeeded = this.answer(msg, STATUS_OK, body, name);
      } else {
        this.answer(
          msg,
          STATUS_ERROR,
          encodeError(asCqrsError(outcome, name), this.codec, this.config.stacks),
          name,
        );
      }
    } catch {
      // Not expected (encodeError and answer never throw); nothing is left to answer with.
    } finally {
      this.ended(endpoint, succeeded);
    }
  }

  /** A call (or a stream) is over: counted, and `stop()` told when it was the last. */
  private ended(endpoint: Endpoint, succeeded: boolean): void {
    this.count(endpoint, succeeded ? 'succeeded' : 'failed');
    this.count(endpoint, 'inFlight', -1);
    if (this.counts.inFlight === 0) this.drained?.();
  }

  private refuse(endpoint: Endpoint, msg: Msg, err: CqrsError): void {
    this.count(endpoint, 'failed');
    this.answer(msg, STATUS_ERROR, encodeError(err, this.codec, this.config.stacks));
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

/**
 * The top-level error of a reply is a CqrsError, whatever the bus rejected with (a custom middleware may
 * reject with anything): clients in other languages rely on its `code` and `cqrs` keys.
 */
function asCqrsError(err: unknown, name: string): unknown {
  let known = false;
  try {
    known = isCqrsError(err);
  } catch {
    // A proxy that throws on every read: wrapped below.
  }
  return known
    ? err
    : new CqrsError('HANDLER_FAILED', `${name} failed: ${messageOf(err)}`, { cause: err, handler: name });
}

function cannotEncode(name: string, codec: Codec, err: unknown): CqrsError {
  return new CqrsError(
    'NOT_CLONEABLE',
    `${name}: the result cannot be encoded (${codec.name}): ${messageOf(err)}`,
    { handler: name },
  );
}

function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return 'unprintable error';
  }
}
