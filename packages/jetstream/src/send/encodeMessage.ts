import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { Codec } from '@cqrs-pool/nats';
import { encodeMetadata } from '@cqrs-pool/nats';
import type { MsgHdrs } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import { DurableHeaders } from '../wire/DurableHeaders.js';

/** A command or event ready to store. @internal */
export interface Outgoing {
  readonly subject: string;
  readonly body: Uint8Array;
  readonly headers: MsgHdrs;
}

/** @internal */
export interface OutgoingParts {
  readonly name: string;
  readonly subject: string;
  readonly value: unknown;
  readonly metadata: unknown;
  readonly messageId: string;
  readonly codec: Codec;
  /** The largest message (body and headers) this sender stores. */
  readonly maxBytes: number;
  readonly extraHeaders?: Readonly<Record<string, string>>;
}

/**
 * Encodes a message for its stream: the value by the codec, metadata and message id in headers, and checks
 * its size against `maxBytes` before anything is sent.
 * @throws CqrsError `VALIDATION` (metadata that is not a map of strings; over `maxBytes`), `NOT_CLONEABLE`
 * (the codec refused the value).
 * @internal
 */
export function encodeMessage(parts: OutgoingParts): Outgoing {
  const { name, codec } = parts;
  const metadata = checkMetadata(parts.metadata, name);
  let body: Uint8Array;
  try {
    body = codec.encode(parts.value);
  } catch (err) {
    throw new CqrsError(
      'NOT_CLONEABLE',
      `${name}: the input cannot be encoded (${codec.name}): ${text(err)}`,
      {
        cause: err,
        handler: name,
      },
    );
  }
  const h = headers();
  h.set(DurableHeaders.MESSAGE_ID, parts.messageId);
  h.set(DurableHeaders.METADATA, encodeMetadata(metadata));
  const traceparent = metadata[DurableHeaders.TRACEPARENT];
  if (traceparent !== undefined) h.set(DurableHeaders.TRACEPARENT, traceparent);
  const tracestate = metadata[DurableHeaders.TRACESTATE];
  if (tracestate !== undefined) h.set(DurableHeaders.TRACESTATE, tracestate);
  for (const [key, value] of Object.entries(parts.extraHeaders ?? {})) h.set(key, value);
  // What the server counts: the header block (with the Nats-Msg-Id the client adds) and the body.
  const headerBytes =
    Buffer.byteLength(h.toString()) + Buffer.byteLength(`Nats-Msg-Id: ${parts.messageId}\r\n`);
  const size = body.byteLength + headerBytes;
  if (size > parts.maxBytes) {
    throw new CqrsError(
      'VALIDATION',
      `${name}: the message is ${size} bytes encoded (input ${body.byteLength}, headers ${headerBytes}), ` +
        `over the limit of ${parts.maxBytes} bytes (maxMessageBytes, at most the server's max_payload less 16 KiB)`,
      { handler: name },
    );
  }
  return { subject: parts.subject, body, headers: h };
}

function checkMetadata(metadata: unknown, name: string): Metadata {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new CqrsError('VALIDATION', `${name}: options.metadata must be an object of strings`, {
      handler: name,
    });
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new CqrsError('VALIDATION', `${name}: metadata '${key}' must be a string, got ${typeof value}`, {
        handler: name,
      });
    }
  }
  return metadata as Metadata;
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
