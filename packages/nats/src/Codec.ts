/**
 * Turns call inputs, results and errors into bytes for NATS and back. Both ends of a subject must use the
 * same codec. `encode` and `decode` throw on what they cannot handle; the caller and the server turn that
 * into a `NOT_CLONEABLE` (encoding) or a malformed-request `VALIDATION` (decoding on a server).
 */
export interface Codec {
  /** A short name, for error messages. */
  readonly name: string;
  /** A call's input, result or (serialized) error to bytes; throws on a value it cannot represent. */
  encode(value: unknown): Uint8Array;
  /** The bytes back to the value; throws on bytes it did not make (a malformed request or reply). */
  decode(bytes: Uint8Array): unknown;
}
