import type { Metadata } from '@cqrs-pool/core';
import { decodeMetadata } from '@cqrs-pool/nats';
import type { JsMsg } from '@nats-io/jetstream';
import type { ResolvedOptions } from '../config/DurableOptions.js';
import { DurableHeaders } from '../wire/DurableHeaders.js';
import { checkMessageId, completionKey } from '../wire/messageId.js';
import type { ParsedDelivery } from './DeliveryProcessor.js';

/**
 * The message id, metadata and value of a stored command or event, or why they cannot be read (no valid
 * message id header, metadata that is not a map of strings, a body the codec refuses).
 * @internal
 */
export function parseDelivery(
  m: JsMsg,
  name: string,
  o: ResolvedOptions,
  group: string | undefined,
): ParsedDelivery | string {
  const h = m.headers;
  let messageId: string;
  try {
    messageId = checkMessageId(h?.get(DurableHeaders.MESSAGE_ID) ?? '', name);
  } catch {
    return `no valid ${DurableHeaders.MESSAGE_ID} header`;
  }
  let metadata: Metadata;
  try {
    const header = h?.get(DurableHeaders.METADATA) ?? '';
    metadata = header === '' ? {} : decodeMetadata(header);
  } catch (err) {
    return `bad ${DurableHeaders.METADATA} header: ${text(err)}`;
  }
  let value: unknown;
  try {
    value = o.codec.decode(m.data);
  } catch (err) {
    return `the body cannot be decoded (${o.codec.name}): ${text(err)}`;
  }
  return { name, messageId, completionKey: completionKey(messageId, group), value, metadata };
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
