import { randomUUID } from 'node:crypto';
import type { Metadata } from '@cqrs-pool/core';
import { checkTimeout } from '../commands/sendCommand.js';
import type { DurableContext } from '../DurableContext.js';
import { encodeMessage } from '../send/encodeMessage.js';
import type { MessageTarget } from '../send/messageTarget.js';
import { checkTarget } from '../send/messageTarget.js';
import type { SendReceipt } from '../send/storeMessage.js';
import { storeMessage } from '../send/storeMessage.js';
import { checkMessageId } from '../wire/messageId.js';

/** Options of `publish` (durable events). */
export interface PublishOptions {
  /** The event's identity, for de-duplication (as for commands). Default: a random UUID. */
  messageId?: string;
  /** Handed to the subscribers as metadata (plus `messageId` and `deliveryCount`). */
  metadata?: Metadata;
  /** How long to keep trying to store it before `UNAVAILABLE`. Default 30 s. */
  timeoutMs?: number;
  /** Stops trying (`ABORTED`; the event may have been stored). */
  signal?: AbortSignal;
}

/** @internal */
export async function publishEvent(
  ctx: DurableContext,
  target: MessageTarget,
  payload: unknown,
  options: PublishOptions = {},
): Promise<SendReceipt> {
  const name = checkTarget(target, payload, 'event', 'publish');
  const messageId = options.messageId === undefined ? randomUUID() : checkMessageId(options.messageId, name);
  const outgoing = encodeMessage({
    name,
    subject: ctx.subjects.event(name),
    value: payload,
    metadata: options.metadata,
    messageId,
    codec: ctx.options.codec,
    maxBytes: ctx.maxMessageBytes(),
  });
  const ack = await storeMessage(ctx.js, outgoing.subject, outgoing.body, outgoing.headers, {
    name,
    messageId,
    timeoutMs: checkTimeout(options.timeoutMs, name),
    signal: options.signal,
  });
  return { messageId, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate, subject: outgoing.subject };
}
