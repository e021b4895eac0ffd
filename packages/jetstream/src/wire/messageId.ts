import { CqrsError } from '@cqrs-pool/core';

/** The longest `messageId` accepted, in characters. */
export const MAX_MESSAGE_ID_LENGTH = 256;

// Printable, no line breaks (it is a header value), no control characters.
const printable = /^[^\p{Cc}]+$/u;
const plainKey = /^[A-Za-z0-9_=-]+$/;

/**
 * Checks a caller's `messageId`: a non-empty string of at most 256 printable characters.
 * @throws CqrsError `VALIDATION` naming `what`.
 * @internal
 */
export function checkMessageId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id === '' || id.length > MAX_MESSAGE_ID_LENGTH || !printable.test(id)) {
    throw new CqrsError(
      'VALIDATION',
      `${what}: messageId must be a string of 1-${MAX_MESSAGE_ID_LENGTH} printable characters, got ${describe(id)}`,
    );
  }
  return id;
}

/**
 * The completions-bucket key of a message id (and the last tokens of its outcome subject): `m.<id>` when the
 * id is made of `A-Z a-z 0-9 _ = -`, else `x.<base64url of its UTF-8>` — a KV key allows few characters, and
 * the two forms never collide. Events add their group: `e.<group>.<m|x>.<…>`.
 * @internal
 */
export function completionKey(id: string, group?: string): string {
  const key = plainKey.test(id) ? `m.${id}` : `x.${Buffer.from(id, 'utf8').toString('base64url')}`;
  return group === undefined ? key : `e.${group}.${key}`;
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
}
