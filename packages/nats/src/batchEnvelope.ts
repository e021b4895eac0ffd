/**
 * The batch envelope of the wire protocol (docs/wire-protocol.md, "Batches"): many calls to one subject in
 * one request message, and their outcomes in one or more reply messages. Both bodies have one layout: a
 * line of JSON describing the parts (one entry per call or outcome, each giving its part's length in
 * bytes), a line feed, then the parts back to back. Each part is encoded by the codec on its own — an
 * input, a result, an error envelope exactly as a single call's body — so the codec's limits apply per
 * call, one bad input fails only its own call, and the framing works for any codec.
 * @internal
 */
import type { Metadata } from '@cqrs-pool/core';
import { metadataFrom } from './metadataHeader.js';

/** What `Cqrs-Codec` ends with on a batch request and on every reply to one: `tagged-json/1+batch/1`. */
export const BATCH_SUFFIX = '+batch/1';
/** `Cqrs-Codec` of a batch in a codec without an id. */
export const BATCH_ONLY = 'batch/1';
/** `Cqrs-Status` of a reply that carries outcomes of a batch. */
export const STATUS_BATCH = 'batch';

/** The `Cqrs-Codec` value of batches in the codec `codecId` (`undefined`: a codec without an id). */
export function batchCodec(codecId: string | undefined): string {
  return codecId === undefined ? BATCH_ONLY : `${codecId}${BATCH_SUFFIX}`;
}

/**
 * The codec a batch's `Cqrs-Codec` names (`''` for none), or `undefined` when the header does not mark a
 * batch of this envelope version.
 */
export function batchedCodecOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (header === BATCH_ONLY) return '';
  return header.endsWith(BATCH_SUFFIX) ? header.slice(0, -BATCH_SUFFIX.length) : undefined;
}

/** A body cut into its descriptor entries and their parts (views into the body, not copies). */
export interface Framed {
  readonly entries: readonly (readonly unknown[])[];
  readonly parts: readonly Uint8Array[];
}

const LINE_FEED = 10;
const encoder = new TextEncoder();

/**
 * Writes a body: `entries` (each already a JSON array, as text) on the first line, then `parts`.
 * `entries[i]` describes `parts[i]`.
 */
export function encodeFramed(entries: readonly string[], parts: readonly Uint8Array[]): Uint8Array {
  const head = encoder.encode(`[${entries.join(',')}]\n`);
  let size = head.byteLength;
  for (const part of parts) size += part.byteLength;
  const body = new Uint8Array(size);
  body.set(head, 0);
  let at = head.byteLength;
  for (const part of parts) {
    body.set(part, at);
    at += part.byteLength;
  }
  return body;
}

/** Thrown by {@link decodeFramed} for a descriptor of more entries than allowed: its size is known, its parts unread. */
export class TooManyEntries extends RangeError {
  constructor(readonly entries: number) {
    super(`${entries} entries`);
  }
}

/**
 * Reads a body written by {@link encodeFramed}: every entry an array whose element `lengthAt` is its part's
 * length, the lengths adding up to exactly the bytes after the first line. Past `maxEntries` entries it
 * stops at once with {@link TooManyEntries}, before reading any.
 * @throws TypeError naming what is wrong (the envelope is then unreadable as a whole).
 */
export function decodeFramed(
  body: Uint8Array,
  lengthAt: number,
  maxEntries = Number.POSITIVE_INFINITY,
): Framed {
  const end = body.indexOf(LINE_FEED);
  if (end < 0) throw new TypeError('no descriptor line (a JSON array, then a line feed)');
  const text = Buffer.from(body.buffer, body.byteOffset, end).toString('utf8');
  let descriptor: unknown;
  try {
    descriptor = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`the descriptor line is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(descriptor)) throw new TypeError('the descriptor line is not a JSON array');
  if (descriptor.length > maxEntries) throw new TooManyEntries(descriptor.length);
  const parts: Uint8Array[] = new Array(descriptor.length);
  let at = end + 1;
  for (let i = 0; i < descriptor.length; i++) {
    const entry: unknown = descriptor[i];
    if (!Array.isArray(entry)) throw new TypeError(`entry ${i} is not an array`);
    const length: unknown = entry[lengthAt];
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw new TypeError(`entry ${i}: its length must be an integer >= 0, got ${JSON.stringify(length)}`);
    }
    if (at + length > body.byteLength) {
      throw new TypeError(`entry ${i}: its part runs past the end of the body (${body.byteLength} bytes)`);
    }
    parts[i] = body.subarray(at, at + length);
    at += length;
  }
  if (at !== body.byteLength) {
    throw new TypeError(
      `the parts take ${at - end - 1} bytes, the body holds ${body.byteLength - end - 1} after the descriptor`,
    );
  }
  return { entries: descriptor as unknown[][], parts };
}

/**
 * A request entry: `[length]`, `[length, timeoutMs]` or `[length, timeoutMs | null, metadata]`, where
 * `metadataJson` is the metadata as JSON (`undefined` when empty).
 */
export function requestEntry(length: number, timeoutMs: number | undefined, metadataJson?: string): string {
  if (metadataJson !== undefined) return `[${length},${timeoutMs ?? 'null'},${metadataJson}]`;
  return timeoutMs === undefined ? `[${length}]` : `[${length},${timeoutMs}]`;
}

const noMetadata: Metadata = Object.freeze({});
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A call of a batch request, as read from its entry (its input is its part). */
export interface RequestCall {
  readonly timeoutMs: number | undefined;
  readonly metadata: Metadata;
}

/**
 * Reads the fields of a request entry after its length, with the rules of the single-call headers: a
 * deadline is an integer of ms from 1 to 2^31 − 1 (or `null`: none), metadata an object of strings.
 * @throws TypeError naming the field (that call alone is malformed).
 */
export function readRequestEntry(entry: readonly unknown[]): RequestCall {
  const timeoutMs = entry[1];
  if (
    timeoutMs !== undefined &&
    timeoutMs !== null &&
    !(
      typeof timeoutMs === 'number' &&
      Number.isInteger(timeoutMs) &&
      timeoutMs >= 1 &&
      timeoutMs <= MAX_TIMEOUT_MS
    )
  ) {
    throw new TypeError(
      `bad deadline ${JSON.stringify(timeoutMs)}: an integer of ms from 1 to ${MAX_TIMEOUT_MS}, or null`,
    );
  }
  const metadata = entry[2] === undefined ? noMetadata : metadataFrom(entry[2]);
  return { timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : undefined, metadata };
}

/** A reply entry: `[index, "ok" | "error", length]`. */
export function replyEntry(index: number, status: string, length: number): string {
  return `[${index},"${status}",${length}]`;
}

/** One outcome of a reply chunk, as read. */
export interface ReadOutcome {
  readonly index: number;
  readonly ok: boolean;
  readonly body: Uint8Array;
}

/**
 * The outcomes of a reply chunk.
 * @throws TypeError for a body that is not a chunk (an entry without an integer index or a known status).
 */
export function decodeReplyChunk(body: Uint8Array): ReadOutcome[] {
  const { entries, parts } = decodeFramed(body, 2);
  const out: ReadOutcome[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const [index, status] = entries[i] as unknown[];
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) {
      throw new TypeError(`outcome ${i}: its index must be an integer >= 0, got ${JSON.stringify(index)}`);
    }
    if (status !== 'ok' && status !== 'error') {
      throw new TypeError(`outcome ${i}: its status must be "ok" or "error", got ${JSON.stringify(status)}`);
    }
    out[i] = { index, ok: status === 'ok', body: parts[i] as Uint8Array };
  }
  return out;
}
