/**
 * The NATS headers of a stored command or event, and the ones a dead letter adds. Values never hold a line
 * break (NATS headers cannot): metadata and errors travel as one-line JSON.
 */
export const DurableHeaders = {
  /** The caller-given (or generated) message id; also sent as `Nats-Msg-Id` for JetStream's de-duplication. */
  MESSAGE_ID: 'Cqrs-Message-Id',
  /** The call's metadata, a JSON object of strings (the same header `@cqrs-pool/nats` uses). */
  METADATA: 'Cqrs-Metadata',
  /** The ordering key of a keyed command, as sent (`s:<string>` or `n:<number>`), for inspection. */
  ORDERING_KEY: 'Cqrs-Ordering-Key',
  /** On a replayed dead letter: its sequence in the dead-letter stream (a replay runs again; a copy without it does not). */
  REPLAY: 'Cqrs-Replay',
  /** On a replayed event: the one subscriber group it is for (the others acknowledge it unseen). */
  GROUP: 'Cqrs-Group',
  /** W3C trace context, copied from the metadata. */
  TRACEPARENT: 'traceparent',
  TRACESTATE: 'tracestate',
  /** Dead letters: why (`permanent`, `max-deliver`, `no-outcome`, `malformed`). */
  DEAD_REASON: 'Cqrs-Dead-Reason',
  /** Dead letters: the error code of the last failure. */
  DEAD_CODE: 'Cqrs-Dead-Code',
  /** Dead letters: the last error as plain data (`encodeError` with `taggedJson`), one line. */
  DEAD_ERROR: 'Cqrs-Dead-Error',
  /** Dead letters: how many times it was taken to be run (attempts, the last included). */
  DEAD_DELIVERIES: 'Cqrs-Dead-Deliveries',
  /** Dead letters: the subject it was stored on (where a replay sends it). */
  DEAD_SUBJECT: 'Cqrs-Dead-Subject',
  /** Dead letters: its sequence in its stream. */
  DEAD_STREAM_SEQ: 'Cqrs-Dead-Stream-Seq',
  /** Dead letters: the subscriber group, for an event. */
  DEAD_GROUP: 'Cqrs-Dead-Group',
  /** Dead letters: when (ISO 8601). */
  DEAD_AT: 'Cqrs-Dead-At',
} as const;

/**
 * Keys a serving node adds to `ctx.metadata` (replacing a sender's own keys of those names), so that a
 * handler can make its effects idempotent: `messageId`, and `deliveryCount` — the attempt: `'1'` on the
 * first, more when an attempt ran before (it failed, or its node died before recording the outcome: then
 * the effect may have happened already). Counted in the completions bucket, not by JetStream, so it holds
 * across server restarts.
 */
export const DurableMetadata = {
  MESSAGE_ID: 'messageId',
  DELIVERY_COUNT: 'deliveryCount',
} as const;
