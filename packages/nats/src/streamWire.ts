/**
 * The NATS headers and statuses of streaming queries (docs/wire-protocol.md, "Streams"), beside those of
 * request/reply (wireHeaders.ts).
 * @internal
 */
export const StreamHeaders = {
  /** On a request: it is a stream, and the items the server may send before the first credit (its window). */
  STREAM: 'Cqrs-Stream',
  /** On every server message of a stream: its number, from 0, so that a lost message is noticed. */
  SEQ: 'Cqrs-Seq',
  /** On the server's first message: the subject the client sends credits and its stop to. */
  CONTROL: 'Cqrs-Control',
  /** On a client's control message: items read since its last credit (0: only alive). */
  CREDIT: 'Cqrs-Credit',
  /** On a client's control message: the client stopped reading; the server ends the stream. */
  STOP: 'Cqrs-Stop',
} as const;

/** A server message with items: its body is the codec's encoding of an array of them. */
export const STATUS_ITEMS = 'items';
/** A server message that only says the stream is alive (empty body). */
export const STATUS_BEAT = 'beat';
/** The last server message of a stream that ended well (empty body). */
export const STATUS_END = 'end';

/** The largest window (and `highWaterMark`) a stream may ask for. */
export const MAX_WINDOW = 2 ** 20;
/** Most items in one message of a stream (a message too large for the connection is split further). */
export const MAX_ITEMS_PER_MESSAGE = 256;

/** How often a side that sent nothing tells the other it is alive: a third of the idle bound, at least 50 ms. */
export function beatEvery(idleMs: number): number {
  return Math.max(50, Math.floor(idleMs / 3));
}
