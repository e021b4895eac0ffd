import { CqrsError } from '@cqrs-pool/core';
import type { Codec } from './Codec.js';
import type { BatchLimits } from './RequestGatherer.js';

/** Options of {@link RemoteClient}. */
export interface RemoteClientOptions {
  /** Subject prefix: calls go to `<prefix>.cmd.<Name>` / `<prefix>.qry.<Name>`. Default `'cqrs'`. Must match the servers'. */
  prefix?: string;
  /**
   * Calls this client may have in flight at once (sent or about to be, alone or in batches), remote streams
   * open included; one more is refused at once with `OVERLOADED` (nothing is sent, nothing queued). Default
   * 1024.
   */
  maxInFlight?: number;
  /**
   * How long a call may wait for its reply, in ms, when nothing shorter bounds it: past it the caller gets
   * `TIMEOUT` and a late reply is dropped. A server that dies with a request in hand never answers, so this
   * is what ends such a call. Default 30 000. A `timeout()` middleware on the calling bus ends it sooner.
   * Sent with each call as its deadline (what is left of it): the serving node answers `TIMEOUT` past it.
   */
  timeoutMs?: number;
  /** Encodes inputs and decodes results and errors. Default {@link taggedJson}. Must match the servers'. */
  codec?: Codec;
  /**
   * Where replies come back: this client subscribes to `<inboxPrefix>.<unique>.*`. Default: the connection's
   * own `inboxPrefix` option (`connect({ inboxPrefix })`), else `_INBOX`. Give each caller's NATS user a
   * prefix of its own and the subscribe permission for it only, so no caller can read another's replies.
   */
  inboxPrefix?: string;
  /**
   * Batching: calls to one subject made in the same turn of the event loop leave together, many in one
   * request message, and the serving node answers them in chunks as they settle — the per-message cost
   * (NATS, headers, a turn of each event loop) is paid once per batch instead of once per call. A lone call
   * to a subject with nothing in flight still leaves at once, alone. While a batch to a subject is in
   * flight, new calls to it wait for its next reply, at most `maxDelayMs` (default 1; `0`: never wait past
   * this turn). `maxSize`: most calls in one message (default 256; the serving node's `maxBatchSize` must
   * allow it); a batch also stays within the connection's `max_payload`. `false` (or `maxSize: 1`) sends
   * every call alone. Default on. Every call still settles on its own, with its own result or error.
   */
  batching?: boolean | { maxSize?: number; maxDelayMs?: number };
}

/** The `batching` option, checked: `undefined` when every call goes alone. @internal */
export function batchLimits(option: RemoteClientOptions['batching']): BatchLimits | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === true) return { maxSize: 256, maxDelayMs: 1 };
  if (typeof option !== 'object' || option === null) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'RemoteClient: options.batching must be a boolean or { maxSize?, maxDelayMs? }',
    );
  }
  const maxSize = checkCount(option.maxSize ?? 256, 'batching.maxSize', 1, 65_536);
  const maxDelayMs = option.maxDelayMs ?? 1;
  if (
    typeof maxDelayMs !== 'number' ||
    !Number.isFinite(maxDelayMs) ||
    maxDelayMs < 0 ||
    maxDelayMs > 60_000
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `RemoteClient: options.batching.maxDelayMs must be a number >= 0 and <= 60000, got ${String(maxDelayMs)}`,
    );
  }
  return maxSize === 1 ? undefined : { maxSize, maxDelayMs };
}

/** An integer option in range. @throws CqrsError `INVALID_REGISTRATION` naming it. @internal */
export function checkCount(
  value: unknown,
  option: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `RemoteClient: options.${option} must be an integer >= ${min} and <= ${max}, got ${String(value)}`,
    );
  }
  return value;
}
