import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import type { SerializedError } from '@cqrs-pool/core/internal';
import { deserializeError, markForwarded, serializeError } from '@cqrs-pool/core/internal';
import type { Codec } from './Codec.js';
import { withoutStacks } from './withoutStacks.js';

/**
 * A call's error as a reply body: core's plain-data form (as errors cross threads), encoded by the codec.
 * Never throws: should a field of the error defeat the codec, the error goes without its fields; should even
 * that fail, as a fixed JSON body with its code and message. `stacks: false` removes every stack trace (the
 * error's, its causes', and those of errors in its fields).
 * Shared with `@cqrs-pool/jetstream` (dead letters, durable results).
 */
export function encodeError(err: unknown, codec: Codec, stacks = true): Uint8Array {
  let serialized = serializeError(err);
  if (!stacks) {
    try {
      serialized = withoutStacks(serialized);
    } catch {
      serialized = bare(serialized);
    }
  }
  try {
    return codec.encode(serialized);
  } catch {
    // below: the same error without its fields
  }
  const plain = bare(serialized);
  try {
    return codec.encode(plain);
  } catch {
    // below: plain JSON, which any codec of ours reads
  }
  try {
    return Buffer.from(JSON.stringify(plain), 'utf8');
  } catch {
    return Buffer.from('{"t":"error","name":"Error","message":"the error cannot be encoded"}', 'utf8');
  }
}

/** The error's name, message and code only (no stack, fields or cause). */
function bare(serialized: SerializedError): SerializedError {
  if (serialized.t === 'value') return { t: 'value', value: describeValue(serialized.value) };
  const code = codeOf(serialized.code);
  return {
    t: 'error',
    name: serialized.name,
    message: serialized.message,
    ...(code === undefined ? {} : { code }),
    // Kept, so a CqrsError is still rebuilt as one with its code.
    ...(serialized.cqrs === undefined ? {} : { cqrs: {} }),
  };
}

function describeValue(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '[a thrown value that cannot be encoded]';
  }
}

/**
 * The caller's side: rebuilds the error a server replied with. A CqrsError comes back as one, with its code
 * and message, marked so the caller's bus passes it on as it is; anything else (a server of another version
 * with a code this one does not know, a body that is not an error) becomes `HANDLER_FAILED` around it.
 */
export function decodeError(body: Uint8Array, codec: Codec, name: string): CqrsError {
  let rebuilt: unknown;
  try {
    const data = codec.decode(body) as SerializedError;
    if (typeof data !== 'object' || data === null || (data.t !== 'error' && data.t !== 'value')) {
      throw new TypeError('not a serialized error');
    }
    rebuilt = deserializeError(data);
  } catch (err) {
    return markForwarded(
      new CqrsError('NOT_CLONEABLE', `${name}: the error reply cannot be decoded (${codec.name})`, {
        cause: err,
        handler: name,
      }),
    );
  }
  if (isCqrsError(rebuilt)) return markForwarded(rebuilt);
  const message = rebuilt instanceof Error ? rebuilt.message : String(rebuilt);
  return markForwarded(
    new CqrsError('HANDLER_FAILED', `${name} failed remotely: ${message}`, { cause: rebuilt, handler: name }),
  );
}

function codeOf(code: unknown): string | undefined {
  return typeof code === 'string' ? code : undefined;
}
