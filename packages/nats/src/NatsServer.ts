import type { CommandBus, Definition, Metadata, QueryBus } from '@cqrs-pool/core';
import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import type { Codec } from './Codec.js';
import { decodeMetadata } from './metadataHeader.js';
import type { MetadataFilter, MetadataPolicy } from './metadataPolicy.js';
import { subjectFor } from './subjects.js';
import { encodeError } from './wireError.js';
import { STATUS_ERROR, STATUS_OK, WireHeaders } from './wireHeaders.js';

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Subject prefix: handlers are served on `<prefix>.cmd.<Name>` / `<prefix>.qry.<Name>`. Default `'cqrs'`. */
  prefix?: string;
  /** The NATS queue group: each request goes to one member. Default `'cqrs-pool'`. */
  queue?: string;
  /** Serve only these handlers (names or definitions). Default: every handler registered on the bus now. */
  handlers?: readonly (string | Definition)[];
  /** Decodes inputs and encodes results and errors. Default `taggedJson`. Must match the callers'. */
  codec?: Codec;
  /**
   * Calls this node runs at once; a request beyond is answered at once with `OVERLOADED` (the caller's
   * `retry()` can try again, likely on another node). Default 1024. The bus's pool bounds its own queue too.
   */
  maxInFlight?: number;
  /**
   * Which of the metadata a caller sent reaches the handlers: `{ allow: [...] }`, `{ drop: [...] }` or a
   * function (see {@link MetadataPolicy}). Default: all of it. Over NATS, metadata is whatever the caller
   * wrote — a `role` or `user` in it is a claim, not a fact: authorization rests on NATS accounts and subject
   * permissions, and this option keeps claims you do not trust from reaching middleware that would believe them.
   */
  metadata?: MetadataPolicy;
  /**
   * Whether error replies carry stack traces (the error's, its causes' and those in its fields). Default
   * `false`: stacks show the server's file paths and code to every caller. `true` for trusted callers only.
   */
  stacks?: boolean;
}

/** @internal What {@link serve} checked and hands to the server. */
export interface ServerConfig {
  readonly codec: Codec;
  readonly maxInFlight: number;
  readonly metadataFilter: MetadataFilter | undefined;
  readonly stacks: boolean;
  readonly names: readonly string[];
  readonly prefix: string;
  readonly queue: string;
}

/** What a {@link NatsServer} has done since it started. */
export interface NatsServerStats {
  /** Requests received. */
  received: number;
  /** Answered with a result. */
  succeeded: number;
  /** Answered with an error (the bus's, or a refusal here). */
  failed: number;
  /**
   * Unreadable (bad body, bad headers, beyond the codec's limits) or without a reply subject; answered with
   * `VALIDATION` when there is a reply subject. Counted in `failed` too when answered.
   */
  malformed: number;
  /** Calls running now. */
  inFlight: number;
}

type Bus = CommandBus | QueryBus;

/**
 * One bus's handlers served on NATS, made by {@link serve}. Each request is decoded, run with
 * `bus.execute(name, input, { metadata, signal })` — through the bus's middleware and, for `inWorker`
 * handlers, its pool — and answered with the result or the error as plain data.
 */
export class NatsServer {
  /** The subjects served, one per handler. */
  readonly subjects: readonly string[];
  private readonly subscriptions: Subscription[] = [];
  private readonly counts: NatsServerStats = {
    received: 0,
    succeeded: 0,
    failed: 0,
    malformed: 0,
    inFlight: 0,
  };
  private stopping: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  private readonly codec: Codec;

  /** @internal Use {@link serve}. */
  constructor(
    private readonly connection: NatsConnection,
    private readonly bus: Bus,
    private readonly config: ServerConfig,
  ) {
    this.codec = config.codec;
    const subjects: string[] = [];
    for (const name of config.names) {
      const subject = subjectFor(config.prefix, bus.kind, name);
      subjects.push(subject);
      this.subscriptions.push(
        connection.subscribe(subject, {
          queue: config.queue,
          callback: (err, msg) => this.onRequest(name, err, msg),
        }),
      );
    }
    this.subjects = subjects;
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
      // drain(): unsubscribe, and still deliver what the NATS server had sent before it saw that.
      await Promise.all(this.subscriptions.map((s) => s.drain().catch(() => undefined)));
      if (this.counts.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      if (!this.connection.isClosed()) await this.connection.flush().catch(() => undefined);
    })();
    return this.stopping;
  }

  private onRequest(name: string, err: Error | null, msg: Msg): void {
    if (err !== null) return;
    this.counts.received++;
    if (msg.reply === undefined || msg.reply === '') {
      // A plain publish, not a request: there is no one to answer, and running a command nobody awaits
      // would hide it from every caller's metrics and errors.
      this.counts.malformed++;
      return;
    }
    if (this.counts.inFlight >= this.config.maxInFlight) {
      this.refuse(
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
      this.counts.malformed++;
      this.refuse(
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
    try {
      metadata = metadataOf(msg.headers);
      timeoutMs = timeoutOf(msg.headers);
      input = this.codec.decode(msg.data);
    } catch (decodeErr) {
      this.counts.malformed++;
      const text = messageOf(decodeErr);
      this.refuse(msg, new CqrsError('VALIDATION', `${name}: malformed request: ${text}`, { handler: name }));
      return;
    }
    const filter = this.config.metadataFilter;
    if (filter !== undefined) {
      try {
        metadata = filter(metadata, { name, subject: msg.subject, headers: msg.headers });
      } catch (refusal) {
        this.refuse(
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
    this.counts.inFlight++;
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
        this.settle(msg, name, true, value);
      },
      (callErr: unknown) => {
        clearTimeout(deadline);
        this.settle(msg, name, false, callErr);
      },
    );
  }

  /** Answers a call that ran, with its result or its error, and counts it; never throws. */
  private settle(msg: Msg, name: string, ok: boolean, outcome: unknown): void {
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
        this.answer(msg, STATUS_ERROR, encodeError(outcome, this.codec, this.config.stacks), name);
      }
    } catch {
      // Not expected (encodeError and answer never throw); nothing is left to answer with.
    } finally {
      this.done(succeeded);
    }
  }

  private refuse(msg: Msg, err: CqrsError): void {
    this.counts.failed++;
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

  private done(succeeded: boolean): void {
    if (succeeded) this.counts.succeeded++;
    else this.counts.failed++;
    if (--this.counts.inFlight === 0) this.drained?.();
  }
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

function metadataOf(h: MsgHdrs | undefined): Metadata {
  const header = h?.get(WireHeaders.METADATA);
  const metadata = header === undefined || header === '' ? {} : decodeMetadata(header);
  // A caller that is not `remote()` may carry only the standard trace headers.
  const traceparent = h?.get(WireHeaders.TRACEPARENT);
  if (traceparent === undefined || traceparent === '' || metadata[WireHeaders.TRACEPARENT] !== undefined)
    return metadata;
  const tracestate = h?.get(WireHeaders.TRACESTATE);
  return Object.freeze({ ...metadata, traceparent, ...(tracestate ? { tracestate } : {}) });
}

function timeoutOf(h: MsgHdrs | undefined): number | undefined {
  const header = h?.get(WireHeaders.TIMEOUT_MS);
  if (header === undefined || header === '') return undefined;
  const ms = Number(header);
  if (!Number.isInteger(ms) || ms <= 0 || ms > 2 ** 31 - 1)
    throw new TypeError(`bad ${WireHeaders.TIMEOUT_MS} header '${header}'`);
  return ms;
}
