import { CqrsError } from '@cqrs-pool/core';
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { apiCode } from '../setup/ensureTopology.js';

const MESSAGE_TOO_LARGE = 10054;

/** What a sender learns when JetStream has stored a command or an event. */
export interface SendReceipt {
  /** The message id (the caller's, or the one generated). */
  readonly messageId: string;
  /** The stream that stored it. */
  readonly stream: string;
  /** Its sequence in that stream. */
  readonly seq: number;
  /** True when the stream had this `messageId` already (within its duplicate window): nothing new was stored. */
  readonly duplicate: boolean;
  /** The subject it was stored on (`<prefix>.dcmd.<partition>.<Name>`, `<prefix>.devt.<Name>`). */
  readonly subject: string;
}

/** Options of one store. @internal */
export interface StoreOptions {
  readonly name: string;
  readonly messageId: string;
  /** The deadline for a PubAck, retries included (ms from now). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Publishes to JetStream and resolves with its PubAck, retrying (same `Nats-Msg-Id`, so a retry of a message
 * that was stored after all is a duplicate, not a second message) while the server does not answer — a
 * restart, a lost connection — until `timeoutMs`.
 * @throws CqrsError (as a rejection) `VALIDATION` (over the stream's size limit), `UNAVAILABLE` (no PubAck
 * within `timeoutMs`, no stream for the subject, or the connection is closed), `ABORTED` (the signal; the
 * message may or may not be stored: send it again with the same `messageId`).
 * @internal
 */
export async function storeMessage(
  js: JetStreamClient,
  subject: string,
  body: Uint8Array,
  headers: MsgHdrs,
  options: StoreOptions,
): Promise<PubAck> {
  const { name, messageId, signal } = options;
  const deadline = performance.now() + options.timeoutMs;
  let attempt = 0;
  let last: unknown;
  for (;;) {
    if (signal?.aborted === true) throw aborted(name, signal);
    const left = deadline - performance.now();
    if (left <= 0) break;
    try {
      return await js.publish(subject, body, {
        msgID: messageId,
        headers,
        timeout: Math.max(200, Math.min(left, 5_000)),
      });
    } catch (err) {
      last = err;
      if (apiCode(err) === MESSAGE_TOO_LARGE) {
        throw new CqrsError(
          'VALIDATION',
          `${name}: JetStream refused the message as too large: ${text(err)}`,
          {
            cause: err,
            handler: name,
          },
        );
      }
      const kind = (err as { name?: unknown } | null)?.name;
      if (kind === 'ClosedConnectionError' || kind === 'DrainingConnectionError') {
        throw new CqrsError('UNAVAILABLE', `${name}: the NATS connection is closed or draining`, {
          cause: err,
          handler: name,
        });
      }
    }
    // A short, growing pause: a server restart takes a second or two; a missing stream will not appear.
    await pause(Math.min(50 * 2 ** attempt++, 1_000, Math.max(0, deadline - performance.now())), signal);
  }
  throw new CqrsError(
    'UNAVAILABLE',
    `${name}: JetStream did not acknowledge the message within ${options.timeoutMs} ms (${text(last)}); ` +
      'send it again with the same messageId',
    { cause: last, handler: name },
  );
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function aborted(name: string, signal: AbortSignal): CqrsError {
  return new CqrsError(
    'ABORTED',
    `${name}: aborted by the caller (it may have been stored; send it again with the same messageId)`,
    {
      cause: signal.reason,
      handler: name,
    },
  );
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
