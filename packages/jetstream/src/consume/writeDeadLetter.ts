import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import { encodeError, taggedJson } from '@cqrs-pool/nats';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { storeMessage } from '../send/storeMessage.js';
import { DurableHeaders } from '../wire/DurableHeaders.js';

/**
 * Why a message was dead-lettered: `permanent` (its failure cannot be cured by a retry), `max-deliver`
 * (it failed transiently `maxDeliver` times), `no-outcome` (it was delivered `maxDeliver` times and no
 * attempt settled — the nodes holding it died, or the handler kills its process), `malformed` (it cannot
 * be read: not a message a sender of this package stored).
 */
export type DeadLetterReason = 'permanent' | 'max-deliver' | 'no-outcome' | 'malformed';

// A header is part of the message, which must fit the server's max_payload: an error's text is kept short.
const MAX_ERROR_HEADER = 8 * 1024;

/**
 * Stores a copy of `m` — its body and headers as they were, plus why, the last error, the delivery count,
 * the subject and sequence it had — in the dead-letter stream. Resolves when JetStream has it; rejects
 * when it could not be stored within `timeoutMs` (the caller must then not drop the message).
 * @internal
 */
export async function writeDeadLetter(
  js: JetStreamClient,
  m: JsMsg,
  to: string,
  details: { reason: DeadLetterReason; error: unknown; attempts: number; group?: string; timeoutMs: number },
): Promise<void> {
  const h = headers();
  for (const [key, values] of m.headers ?? []) {
    // The original's de-duplication and expectations are not the dead letter's.
    if (key.toLowerCase().startsWith('nats-')) continue;
    for (const value of values) h.append(key, value);
  }
  const error = details.error;
  h.set(DurableHeaders.DEAD_REASON, details.reason);
  h.set(DurableHeaders.DEAD_CODE, isCqrsError(error) ? error.code : 'HANDLER_FAILED');
  h.set(DurableHeaders.DEAD_ERROR, errorHeader(error));
  h.set(DurableHeaders.DEAD_DELIVERIES, String(details.attempts));
  h.set(DurableHeaders.DEAD_SUBJECT, m.subject);
  h.set(DurableHeaders.DEAD_STREAM_SEQ, String(m.seq));
  h.set(DurableHeaders.DEAD_AT, new Date().toISOString());
  if (details.group !== undefined) h.set(DurableHeaders.DEAD_GROUP, details.group);
  // One dead letter per stored message (and group): a node that dies after storing it and before the
  // term sees its retry de-duplicated.
  const id = `dead.${m.info.stream}.${details.group ?? ''}.${m.seq}`;
  await storeMessage(js, to, m.data, h, { name: m.subject, messageId: id, timeoutMs: details.timeoutMs });
}

function errorHeader(error: unknown): string {
  const full = Buffer.from(encodeError(error, taggedJson)).toString('utf8');
  if (full.length <= MAX_ERROR_HEADER) return full;
  const code = isCqrsError(error) ? error.code : 'HANDLER_FAILED';
  const message = error instanceof Error ? error.message : String(error);
  return Buffer.from(encodeError(new CqrsError(code, message.slice(0, 2_000)), taggedJson)).toString('utf8');
}
