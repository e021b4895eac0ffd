import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import type { Codec } from './Codec.js';
import { encodeError } from './wireError.js';
import { STATUS_ERROR, STATUS_OK } from './wireHeaders.js';

/** What a serving node answers a call with, alone or in a batch: its `Cqrs-Status` and body. @internal */
export interface ReplyBody {
  readonly status: string;
  readonly body: Uint8Array;
}

/**
 * A call's reply body: the result encoded, or the error envelope — also when the result cannot be
 * encoded. Never throws.
 * @internal
 */
export function outcomeBody(
  name: string,
  ok: boolean,
  outcome: unknown,
  codec: Codec,
  stacks: boolean,
): ReplyBody {
  if (ok) {
    try {
      return { status: STATUS_OK, body: codec.encode(outcome) };
    } catch (encodeErr) {
      return { status: STATUS_ERROR, body: encodeError(cannotEncode(name, codec, encodeErr), codec, stacks) };
    }
  }
  return { status: STATUS_ERROR, body: encodeError(asCqrsError(outcome, name), codec, stacks) };
}

/**
 * The top-level error of a reply is a CqrsError, whatever the bus rejected with (a custom middleware may
 * reject with anything): clients in other languages rely on its `code` and `cqrs` keys.
 */
function asCqrsError(err: unknown, name: string): unknown {
  let known = false;
  try {
    known = isCqrsError(err);
  } catch {
    // A proxy that throws on every read: wrapped below.
  }
  return known
    ? err
    : new CqrsError('HANDLER_FAILED', `${name} failed: ${messageOf(err)}`, { cause: err, handler: name });
}

function cannotEncode(name: string, codec: Codec, err: unknown): CqrsError {
  return new CqrsError(
    'NOT_CLONEABLE',
    `${name}: the result cannot be encoded (${codec.name}): ${messageOf(err)}`,
    { handler: name },
  );
}

/** A metadata policy's refusal: a CqrsError as it is, anything else as `VALIDATION` with its message. @internal */
export function metadataRefusal(refusal: unknown, name: string): CqrsError {
  return isCqrsError(refusal)
    ? refusal
    : new CqrsError('VALIDATION', `${name}: metadata refused: ${messageOf(refusal)}`, { handler: name });
}

/** An error's message, whatever was thrown. @internal */
export function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return 'unprintable error';
  }
}
