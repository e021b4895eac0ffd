/**
 * The NATS headers of the request/reply protocol between `remote()` and `serve()`. Values never hold a line
 * break (NATS headers cannot): metadata travels as one JSON-encoded header, where line breaks are escaped.
 * @internal
 */
export const WireHeaders = {
  /** The call's metadata, a JSON object of strings. */
  METADATA: 'Cqrs-Metadata',
  /** Milliseconds the caller will still wait: the server aborts the call past it (nobody reads the reply). */
  TIMEOUT_MS: 'Cqrs-Timeout-Ms',
  /** On a reply: `ok` (the body is the result) or `error` (the body is the error, serialized). */
  STATUS: 'Cqrs-Status',
  /** On requests and replies: the body's codec and wire version (`Codec.id`), e.g. `tagged-json/1`. */
  CODEC: 'Cqrs-Codec',
  /** W3C trace context, copied from the metadata so that NATS-aware tracing sees it too. */
  TRACEPARENT: 'traceparent',
  TRACESTATE: 'tracestate',
} as const;

/** The status of a successful reply. @internal */
export const STATUS_OK = 'ok';
/** The status of a failed reply. @internal */
export const STATUS_ERROR = 'error';
