import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { MsgHdrs } from '@nats-io/transport-node';

/** What a {@link MetadataFilter} is told about the request besides its metadata. */
export interface MetadataRequest {
  /** The message name (`CreateUser`). */
  readonly name: string;
  /** The subject the request came on. */
  readonly subject: string;
  /** The request's NATS headers, as received. */
  readonly headers: MsgHdrs | undefined;
}

/**
 * Decides the metadata a call served over NATS runs with, from what the caller sent. Returns the metadata to
 * use (an object of strings); throws to refuse the call — the caller gets a thrown `CqrsError` as it is,
 * anything else as `VALIDATION` with its message.
 */
export type MetadataFilter = (metadata: Metadata, request: MetadataRequest) => Metadata;

/**
 * The `metadata` option of `serve`: which of the metadata a caller sent reaches the handlers.
 * - `{ allow: [...] }`: only these keys pass (list `traceparent` and `tracestate` to keep traces joined);
 * - `{ drop: [...] }`: these keys are removed, the others pass;
 * - a {@link MetadataFilter}.
 */
export type MetadataPolicy =
  | { readonly allow: readonly string[] }
  | { readonly drop: readonly string[] }
  | MetadataFilter;

/**
 * The filter of a `metadata` option, or undefined for none (every key passes).
 * @throws CqrsError `INVALID_REGISTRATION` for a malformed option.
 * @internal
 */
export function metadataFilterOf(policy: unknown, where: string): MetadataFilter | undefined {
  if (policy === undefined) return undefined;
  if (typeof policy === 'function') return checked(policy as MetadataFilter);
  if (typeof policy === 'object' && policy !== null) {
    const { allow, drop } = policy as { allow?: unknown; drop?: unknown };
    const list = allow ?? drop;
    if ((allow === undefined) !== (drop === undefined) && isStringList(list)) {
      const keys = new Set(list);
      const keep = allow !== undefined;
      return (metadata) => {
        const out: Record<string, string> = {};
        for (const [key, value] of Object.entries(metadata)) {
          if (keys.has(key) === keep) Object.defineProperty(out, key, { value, enumerable: true });
        }
        return Object.freeze(out);
      };
    }
  }
  throw new CqrsError(
    'INVALID_REGISTRATION',
    `${where} must be { allow: string[] }, { drop: string[] } or a function (metadata, request) => metadata`,
  );
}

function isStringList(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((key) => typeof key === 'string');
}

/** A user's filter, whose result is checked and frozen like metadata read from the wire. */
function checked(filter: MetadataFilter): MetadataFilter {
  return (metadata, request) => {
    const result: unknown = filter(metadata, request);
    if (typeof result !== 'object' || result === null || Array.isArray(result)) {
      throw new TypeError('the metadata filter must return an object of strings');
    }
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(result)) {
      if (typeof value !== 'string')
        throw new TypeError(`the metadata filter returned a non-string '${key}'`);
      Object.defineProperty(out, key, { value, enumerable: true });
    }
    return Object.freeze(out);
  };
}
