import type { Metadata } from '@cqrs-pool/core';

/** The metadata as the value of the `Cqrs-Metadata` header (JSON, one line). */
export function encodeMetadata(metadata: Metadata): string {
  return JSON.stringify(metadata);
}

/**
 * Parses a `Cqrs-Metadata` header: a JSON object whose values are all strings.
 * @throws TypeError when it is anything else.
 */
export function decodeMetadata(header: string): Metadata {
  return metadataFrom(JSON.parse(header));
}

/**
 * Metadata from parsed JSON (a header's, or a batch call's): an object whose values are all strings, copied
 * and frozen.
 * @throws TypeError when it is anything else.
 * @internal
 */
export function metadataFrom(parsed: unknown): Metadata {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError('metadata must be a JSON object');
  }
  // A fresh object through defineProperty: a `__proto__` key from the wire stays a plain key.
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') throw new TypeError(`metadata '${key}' must be a string`);
    Object.defineProperty(out, key, { value, writable: false, enumerable: true, configurable: false });
  }
  return Object.freeze(out);
}
