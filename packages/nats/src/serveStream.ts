import type { CommandBus, Metadata, QueryBus, QueryStream } from '@cqrs-pool/core';
import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox, headers } from '@nats-io/transport-node';
import type { Codec } from './Codec.js';
import {
  beatEvery,
  MAX_ITEMS_PER_MESSAGE,
  STATUS_BEAT,
  STATUS_END,
  STATUS_ITEMS,
  StreamHeaders,
} from './streamWire.js';
import { encodeError } from './wireError.js';
import { STATUS_ERROR, WireHeaders } from './wireHeaders.js';

/** One stream request, decoded, for {@link serveStream}. */
export interface StreamRequest {
  readonly connection: NatsConnection;
  readonly bus: CommandBus | QueryBus;
  readonly name: string;
  readonly msg: Msg;
  readonly input: unknown;
  readonly metadata: Metadata;
  /** The stream's window: items the client takes before its first credit. */
  readonly window: number;
  /** The idle bound: past it without a word from the client, the stream is stopped. */
  readonly idleMs: number | undefined;
  readonly codec: Codec;
  readonly stacks: boolean;
  /** Called once when the stream has ended: whether it ended well (or was stopped by the client). */
  readonly done: (ok: boolean) => void;
}

/** The window a stream request asks for (`Cqrs-Stream`), or undefined when it is no stream request. */
export function streamWindowOf(h: MsgHdrs | undefined, max: number): number | undefined {
  const raw = h?.get(StreamHeaders.STREAM);
  if (raw === undefined || raw === '') return undefined;
  if (!/^[1-9][0-9]{0,6}$/.test(raw) || Number(raw) > max) {
    throw new Error(
      `${StreamHeaders.STREAM} must be a decimal integer from 1 to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return Number(raw);
}

/**
 * Serves one stream request: `bus.stream(name, input)` on this node, its items sent to the caller's reply
 * subject in messages of up to {@link MAX_ITEMS_PER_MESSAGE} — never more than the client's credits allow
 * beyond what it has read — then `end`, or the error. The client's credits and its stop come on a subject of
 * this node's (named in the first message). Each side says it is alive when it has said nothing for a third
 * of the idle bound; a client silent past the bound has gone: the stream is stopped. Never throws.
 */
export function serveStream(request: StreamRequest): void {
  const { connection, bus, name, msg, codec, stacks } = request;
  const reply = msg.reply as string;
  let seq = 0;
  let credits = request.window;
  /** The client stopped reading (a success), or went silent past the idle bound (`gone`: a failure). */
  let stopped = false;
  let gone = false;
  let wake: (() => void) | undefined;
  let lastSent = performance.now();
  let lastHeard = performance.now();
  let control: Subscription | undefined;
  let controlSubject: string | undefined;
  const controller = new AbortController();

  const send = (status: string, body: Uint8Array): void => {
    const h = headers();
    h.set(WireHeaders.STATUS, status);
    if (codec.id !== undefined) h.set(WireHeaders.CODEC, codec.id);
    h.set(StreamHeaders.SEQ, String(seq));
    if (seq === 0 && controlSubject !== undefined) h.set(StreamHeaders.CONTROL, controlSubject);
    connection.publish(reply, body, { headers: h });
    seq++;
    lastSent = performance.now();
  };
  const sendError = (err: unknown): void => {
    try {
      send(STATUS_ERROR, encodeError(asCqrsError(err, name), codec, stacks));
    } catch {
      // The connection is gone: nobody is left to tell.
    }
  };

  if (bus.kind !== 'query') {
    sendError(
      new CqrsError('INVALID_REGISTRATION', `${name} is a command: only queries stream`, { handler: name }),
    );
    request.done(false);
    return;
  }
  const stream: QueryStream = (bus as QueryBus).stream(name, request.input, {
    metadata: request.metadata,
    signal: controller.signal,
    highWaterMark: request.window,
  });

  try {
    controlSubject = createInbox();
    control = connection.subscribe(controlSubject, {
      callback: (err, message) => {
        if (err !== null) return;
        lastHeard = performance.now();
        const h = message.headers;
        if (h?.get(StreamHeaders.STOP) !== undefined && h.get(StreamHeaders.STOP) !== '') {
          stopped = true;
          // Ends a wait for items too: the stream's buffer answers it with the end.
          void stream.return();
        } else {
          const credit = Number(h?.get(StreamHeaders.CREDIT) ?? '0');
          if (Number.isInteger(credit) && credit > 0 && credit <= request.window) credits += credit;
        }
        wake?.();
      },
    });
  } catch (err) {
    sendError(err);
    request.done(false);
    return;
  }

  const idleMs = request.idleMs;
  const beat =
    idleMs === undefined
      ? undefined
      : setInterval(() => {
          const now = performance.now();
          if (now - lastHeard > idleMs) {
            // The client is gone (or cut off): its stream is stopped, its generator ended.
            stopped = true;
            gone = true;
            controller.abort(
              new CqrsError('TIMEOUT', `${name}: the caller was silent for ${idleMs} ms`, { handler: name }),
            );
            wake?.();
          } else if (now - lastSent >= beatEvery(idleMs)) {
            try {
              send(STATUS_BEAT, new Uint8Array(0));
            } catch {
              // Closed: the stream ends with the connection.
            }
          }
        }, beatEvery(idleMs));

  /** Sends `items`, halving what does not fit in one message (NATS `max_payload`) down to one item. */
  const sendItems = (items: readonly unknown[]): void => {
    let body: Uint8Array;
    try {
      body = codec.encode(items);
    } catch (err) {
      throw new CqrsError(
        'NOT_CLONEABLE',
        `${name}: an item cannot be encoded (${codec.name}): ${messageOf(err)}`,
        {
          handler: name,
        },
      );
    }
    try {
      send(STATUS_ITEMS, body);
    } catch (err) {
      if (connection.isClosed() || items.length === 1) {
        throw new CqrsError(
          'NOT_CLONEABLE',
          `${name}: an item cannot be sent (${body.byteLength} bytes): ${messageOf(err)}`,
          {
            handler: name,
          },
        );
      }
      const half = Math.ceil(items.length / 2);
      sendItems(items.slice(0, half));
      sendItems(items.slice(half));
    }
  };

  const pump = async (): Promise<void> => {
    for (;;) {
      while (credits <= 0 && !stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (stopped) return;
      const items = await stream.takeSome(Math.min(credits, MAX_ITEMS_PER_MESSAGE));
      if (stopped) return;
      if (items === undefined) break;
      credits -= items.length;
      sendItems(items);
    }
    send(STATUS_END, new Uint8Array(0));
  };
  pump().then(
    async () => {
      await finish();
      request.done(!gone);
    },
    async (err: unknown) => {
      // Nothing more to say to a client that left.
      if (!stopped) sendError(err);
      await finish();
      request.done(stopped && !gone);
    },
  );

  async function finish(): Promise<void> {
    if (beat !== undefined) clearInterval(beat);
    control?.unsubscribe();
    // Stopped (or failed to send): the generator is ended, its finally runs.
    await stream.return();
  }
}

/** The top-level error of a reply is a CqrsError, whatever the bus rejected with (as for single calls). */
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

function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return 'unprintable error';
  }
}
