/**
 * Turns call inputs, results and errors into bytes for NATS and back. Both ends of a subject must use the
 * same codec. `encode` and `decode` throw on what they cannot handle; the caller and the server turn that
 * into a `NOT_CLONEABLE` (encoding) or a malformed-request `VALIDATION` (decoding on a server).
 */
export interface Codec {
  /** A short name, for error messages. */
  readonly name: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}
