import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { createInbox, headers } from '@nats-io/transport-node';
import { encodeMetadata } from './metadataHeader.js';
import type { OpenStream, RemoteClient } from './RemoteClient.js';
import { beatEvery, STATUS_BEAT, STATUS_END, STATUS_ITEMS, StreamHeaders } from './streamWire.js';
import { decodeError } from './wireError.js';
import { STATUS_ERROR, WireHeaders } from './wireHeaders.js';

const doneResult: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * The calling side of one remote stream (docs/wire-protocol.md, "Streams"): the request goes out with a
 * window of credits, the server's messages come back on an inbox of this stream's own, in order (each is
 * numbered: a gap fails the stream), and items read are handed back as credits in batches of a quarter of
 * the window — so the server is never more than `window` items ahead of this iterator's reader. While the
 * stream is open each side says it is alive when it has said nothing for a third of the client's
 * `timeoutMs`; a server silent for longer has gone: `TIMEOUT`. `return()` (or the signal) tells the server to
 * stop. Errors are marked forwarded: the serving bus's `CqrsError` reaches the caller as it is. An open
 * stream holds a place under its client's `maxInFlight` (`OVERLOADED` when none is left), and ends with the
 * client (`CLOSED`) or the connection (`UNAVAILABLE`) at once.
 * @internal
 */
export class StreamSession implements AsyncIterableIterator<unknown>, OpenStream {
  private chunks: (readonly unknown[])[] = [];
  private at = 0;
  private finished = false;
  private failure: CqrsError | undefined;
  private waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void } | undefined;
  private subscription: Subscription | undefined;
  private control: string | undefined;
  private seq = 0;
  private read = 0;
  private readonly step: number;
  private lastHeard = performance.now();
  private lastSent = performance.now();
  private beat: NodeJS.Timeout | undefined;
  private readonly onAbort: (() => void) | undefined;
  /** Stopped before the server's first message named its control subject: the stop goes when it does. */
  private stopPending = false;

  constructor(
    private readonly client: RemoteClient,
    subject: string,
    readonly name: string,
    input: unknown,
    metadata: Metadata,
    private readonly signal: AbortSignal | undefined,
    window: number,
  ) {
    this.step = Math.max(1, Math.floor(window / 4));
    this.onAbort = signal === undefined ? undefined : () => this.stop();
    const refused = client.openStream(this, name);
    if (refused !== undefined) {
      this.fail(refused);
      return;
    }
    const codec = client.codec;
    let body: Uint8Array;
    try {
      body = codec.encode(input);
    } catch (err) {
      this.fail(
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the input cannot be encoded (${codec.name}): ${messageOf(err)}`,
          {
            handler: name,
            cause: err,
          },
        ),
      );
      return;
    }
    const h = headers();
    if (codec.id !== undefined) h.set(WireHeaders.CODEC, codec.id);
    h.set(WireHeaders.METADATA, encodeMetadata(metadata));
    h.set(WireHeaders.TIMEOUT_MS, String(client.timeoutMs));
    h.set(StreamHeaders.STREAM, String(window));
    const traceparent = metadata[WireHeaders.TRACEPARENT];
    if (traceparent !== undefined) h.set(WireHeaders.TRACEPARENT, traceparent);
    const tracestate = metadata[WireHeaders.TRACESTATE];
    if (tracestate !== undefined) h.set(WireHeaders.TRACESTATE, tracestate);
    const connection = client.connection;
    try {
      const inbox = createInbox(client.inboxPrefix);
      this.subscription = connection.subscribe(inbox, { callback: (err, msg) => this.onMessage(err, msg) });
      connection.publish(subject, body, { reply: inbox, headers: h });
    } catch (err) {
      this.fail(
        new CqrsError('UNAVAILABLE', `${name}: the stream request cannot be sent: ${messageOf(err)}`, {
          handler: name,
          cause: err,
        }),
      );
      return;
    }
    if (signal !== undefined && this.onAbort !== undefined) {
      if (signal.aborted) this.stop();
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
    const every = beatEvery(client.timeoutMs);
    this.beat = setInterval(() => this.watch(), every);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown>> {
    const chunk = this.chunks[0];
    if (chunk !== undefined) return Promise.resolve({ value: this.take(chunk), done: false });
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      this.finished = true;
      return Promise.reject(err);
    }
    if (this.finished) return Promise.resolve(doneResult);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops the stream: the server is told, and ends its generator. */
  return(): Promise<IteratorResult<unknown>> {
    this.stop();
    return Promise.resolve(doneResult);
  }

  private take(chunk: readonly unknown[]): unknown {
    const value = chunk[this.at++];
    if (this.at === chunk.length) {
      this.chunks.shift();
      this.at = 0;
    }
    if (++this.read >= this.step || this.chunks.length === 0) this.credit();
    return value;
  }

  /** Hands the items read back to the server as credits (0: only says this side is alive). */
  private credit(): void {
    if (this.control === undefined || this.finished) return;
    const h = headers();
    h.set(StreamHeaders.CREDIT, String(this.read));
    this.read = 0;
    this.sendControl(h);
  }

  private sendControl(h: ReturnType<typeof headers>): void {
    try {
      this.client.connection.publish(this.control as string, new Uint8Array(0), { headers: h });
      this.lastSent = performance.now();
    } catch {
      // A closed connection: the watch ends the stream.
    }
  }

  private watch(): void {
    const now = performance.now();
    if (this.stopPending) {
      // The server never answered: nothing left to tell it.
      if (now - this.lastHeard > this.client.timeoutMs) this.cleanUp();
      return;
    }
    if (this.finished) return;
    if (now - this.lastHeard > this.client.timeoutMs) {
      this.fail(
        new CqrsError('TIMEOUT', `${this.name}: no word from the server in ${this.client.timeoutMs} ms`, {
          handler: this.name,
        }),
      );
      this.stop();
    } else if (now - this.lastSent >= beatEvery(this.client.timeoutMs)) this.credit();
  }

  private onMessage(err: Error | null, msg: Msg): void {
    if (this.stopPending) {
      const control = msg.headers?.get(StreamHeaders.CONTROL);
      if (control !== undefined && control !== '') {
        this.control = control;
        this.sendStop();
      }
      this.cleanUp();
      return;
    }
    if (this.finished) return;
    const name = this.name;
    if (err !== null) {
      this.fail(
        new CqrsError('UNAVAILABLE', `${name}: the stream's inbox failed: ${err.message}`, { handler: name }),
      );
      return;
    }
    const h = msg.headers;
    if (msg.data.length === 0 && h?.code === 503) {
      this.fail(
        new CqrsError('UNAVAILABLE', `${name}: no server is serving it (no responders on NATS)`, {
          handler: name,
        }),
      );
      return;
    }
    this.lastHeard = performance.now();
    const status = h?.get(WireHeaders.STATUS);
    // A refusal before the stream began comes as a plain error reply, unnumbered.
    if (status === STATUS_ERROR) {
      this.fail(decodeError(msg.data, this.client.codec, name));
      return;
    }
    const seq = h?.get(StreamHeaders.SEQ);
    if (seq !== String(this.seq)) {
      this.fail(
        new CqrsError(
          'UNAVAILABLE',
          `${name}: message ${this.seq} of the stream was lost (got ${String(seq)})`,
          {
            handler: name,
          },
        ),
      );
      this.stop();
      return;
    }
    this.seq++;
    const control = h?.get(StreamHeaders.CONTROL);
    if (control !== undefined && control !== '') this.control = control;
    if (status === STATUS_BEAT) return;
    if (status === STATUS_END) {
      this.end();
      return;
    }
    const codec = this.client.codec;
    const replied = h?.get(WireHeaders.CODEC);
    let items: unknown;
    try {
      if (status !== STATUS_ITEMS) throw new Error(`unknown status ${JSON.stringify(status)}`);
      if (codec.id !== undefined && replied !== undefined && replied !== '' && replied !== codec.id) {
        throw new Error(`the stream is in ${replied}, this client speaks ${codec.id}`);
      }
      items = codec.decode(msg.data);
      if (!Array.isArray(items) || items.length === 0) throw new Error('a message of items holds none');
    } catch (decodeErr) {
      this.fail(
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: a message of the stream cannot be read: ${messageOf(decodeErr)}`,
          {
            handler: name,
            cause: decodeErr,
          },
        ),
      );
      this.stop();
      return;
    }
    this.chunks.push(items);
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve({ value: this.take(items), done: false });
    }
  }

  /** Ends the stream with `err`, after the items received before it. */
  private fail(err: CqrsError): void {
    if (this.finished || this.failure !== undefined) return;
    this.failure = markForwarded(err);
    this.cleanUp();
    const waiter = this.waiter;
    if (waiter !== undefined && this.chunks.length === 0) {
      this.waiter = undefined;
      this.failure = undefined;
      this.finished = true;
      waiter.reject(err);
    }
  }

  private end(): void {
    this.finished = true;
    this.cleanUp();
    const waiter = this.waiter;
    if (waiter !== undefined && this.chunks.length === 0) {
      this.waiter = undefined;
      waiter.resolve(doneResult);
    }
  }

  /** This side stopped reading (or gave up): the server is told, and a waiting read ends. */
  private stop(): void {
    if (!this.finished && this.failure === undefined) {
      if (this.control !== undefined) this.sendStop();
      // The server has not answered yet: its first message names where the stop goes (see onMessage).
      else if (this.subscription !== undefined) this.stopPending = true;
    }
    this.chunks = [];
    this.finished = true;
    if (!this.stopPending) this.cleanUp();
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve(doneResult);
    }
  }

  /** The client closed, or its connection did: the stream fails with `err`; the server is told to stop. */
  abandon(err: CqrsError): void {
    if (!this.finished && this.failure === undefined && this.control !== undefined) this.sendStop();
    // A stop still waiting for the server's first message waits no more: nothing here will read it.
    this.stopPending = false;
    this.fail(err);
    this.cleanUp();
  }

  private sendStop(): void {
    const h = headers();
    h.set(StreamHeaders.STOP, '1');
    this.sendControl(h);
  }

  private cleanUp(): void {
    this.client.streamEnded(this);
    if (this.beat !== undefined) clearInterval(this.beat);
    this.beat = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
