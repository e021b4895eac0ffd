/**
 * Turns call inputs, results and errors into bytes for NATS and back. Both ends of a subject must use the
 * same codec (see {@link Codec.id}). `encode` and `decode` throw on what they cannot handle; the caller and
 * the server turn that into a `NOT_CLONEABLE` (encoding) or a malformed-request `VALIDATION` (decoding on a
 * server).
 */
export interface Codec {
  /** A short name, for error messages. */
  readonly name: string;
  /**
   * The codec and the version of its wire format, `<name>/<version>` (`tagged-json/1`, `json/1`): sent in the
   * `Cqrs-Codec` header of requests and replies, so that each side can tell what the other speaks; a server
   * refuses a request that names another codec. Optional for a codec of your own: without it the header is
   * neither sent nor checked.
   */
  readonly id?: string;
  /** A call's input, result or (serialized) error to bytes; throws on a value it cannot represent. */
  encode(value: unknown): Uint8Array;
  /** The bytes back to the value; throws on bytes it did not make (a malformed request or reply). */
  decode(bytes: Uint8Array): unknown;
}
