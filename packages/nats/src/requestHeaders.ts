import type { Metadata } from '@cqrs-pool/core';
import type { MsgHdrs } from '@nats-io/transport-node';
import { decodeMetadata } from './metadataHeader.js';
import { WireHeaders } from './wireHeaders.js';

/**
 * The call's metadata from a request's headers: `Cqrs-Metadata`, plus the W3C trace headers when it has no
 * `traceparent` of its own. @throws TypeError for a malformed header.
 * @internal
 */
export function metadataOf(h: MsgHdrs | undefined): Metadata {
  const header = h?.get(WireHeaders.METADATA);
  const metadata = header === undefined || header === '' ? {} : decodeMetadata(header);
  // A caller that is not `remote()` may carry only the standard trace headers.
  const traceparent = h?.get(WireHeaders.TRACEPARENT);
  if (traceparent === undefined || traceparent === '' || metadata[WireHeaders.TRACEPARENT] !== undefined)
    return metadata;
  const tracestate = h?.get(WireHeaders.TRACESTATE);
  return Object.freeze({ ...metadata, traceparent, ...(tracestate ? { tracestate } : {}) });
}

/** `Cqrs-Timeout-Ms`: a decimal integer of ms, 1 to 2^31 − 1. @throws TypeError otherwise. @internal */
export function timeoutOf(h: MsgHdrs | undefined): number | undefined {
  const header = h?.get(WireHeaders.TIMEOUT_MS);
  if (header === undefined || header === '') return undefined;
  // Digits only: Number() would also take '5e3', ' 5000 ', '0x10' and '5000.0', which the protocol does not.
  const ms = /^[0-9]{1,10}$/.test(header) ? Number(header) : Number.NaN;
  if (!(ms >= 1 && ms <= 2 ** 31 - 1)) {
    throw new TypeError(
      `bad ${WireHeaders.TIMEOUT_MS} header '${header}': a decimal integer from 1 to 2147483647`,
    );
  }
  return ms;
}
