import type { Codec } from './Codec.js';
import type { CodecLimits } from './codecLimits.js';
import { DepthTracker, resolveLimits, tooDeep } from './codecLimits.js';

/** Limits of {@link createPlainJson}: only the depth applies (plain JSON has no bigints, maps or sets). */
export type PlainJsonLimits = Pick<CodecLimits, 'maxDepth'>;

/**
 * A plain-JSON {@link Codec} (`json/1` on the wire) for systems whose callers or servers are not all Node:
 * bodies are ordinary JSON that any language reads and writes, with no `$t` tags (a `$t` key is an
 * ordinary key). What JSON cannot carry exactly is refused rather than changed on the way — `encode` throws:
 *
 * - `bigint`, and `number`s that are integers beyond ±(2^53 − 1): JavaScript rounds such JSON numbers when
 *   it parses them, silently. Send big integers as decimal strings (`String(big)`, `BigInt(text)` back; in
 *   Go a `string` field, `json:",string"` or `big.Int.SetString`). `decode` refuses an integer-valued number
 *   beyond ±(2^53 − 1) for the same reason (it may already have lost digits, and `1e20` cannot be told from
 *   `100000000000000000000` once parsed).
 * - `NaN`, `±Infinity` (JSON has no such numbers); functions and symbols; `Map`, `Set`, typed arrays,
 *   `ArrayBuffer`, `RegExp` and `Error` (JSON would write `{}`); `undefined` in an array (JSON writes `null`).
 *   Send an object or an array of entries, or base64 text for binary.
 *
 * As with `JSON.stringify`: `undefined` fields are left out, a top-level `undefined` is `null`, `Date`s and
 * other objects with `toJSON` are written as what it returns (a `Date` arrives as its ISO string), class
 * instances as their own enumerable fields, `-0` as `0`. Nesting is bounded by `maxDepth` (default 256).
 *
 * @throws CqrsError `INVALID_REGISTRATION` for a `maxDepth` that is not an integer from 1 to 1,000.
 */
export function createPlainJson(limits?: PlainJsonLimits): Codec {
  const { maxDepth } = resolveLimits(limits, 'createPlainJson: limits');
  return {
    name: 'json',
    id: 'json/1',
    encode(value: unknown): Uint8Array {
      return Buffer.from(JSON.stringify(value, replacerFor(maxDepth)) ?? 'null', 'utf8');
    },
    decode(bytes: Uint8Array): unknown {
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
      const value: unknown = JSON.parse(text);
      check(value, maxDepth);
      return value;
    },
  };
}

/** The plain-JSON codec with the default depth limit. */
export const plainJson: Codec = createPlainJson();

function replacerFor(maxDepth: number): (this: unknown, key: string, value: unknown) => unknown {
  const depth = new DepthTracker(maxDepth);
  return function replacer(this: unknown, key: string, value: unknown): unknown {
    const at = key === '' ? '' : ` (at '${key}')`;
    const raw = (this as Record<string, unknown>)[key];
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (!Number.isFinite(value)) throw new TypeError(`${value} cannot be written as JSON${at}`);
        if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw unsafeInteger(String(value), at);
        return value;
      case 'bigint':
        throw new TypeError(
          `a bigint cannot be sent as plain JSON${at}: JSON parsers round integers beyond 2^53; send it as a decimal string`,
        );
      case 'undefined':
        // A field: left out, as JSON.stringify does. In an array it would become null: refused.
        if (Array.isArray(this)) throw new TypeError(`undefined in an array cannot be written as JSON${at}`);
        return undefined;
      case 'function':
      case 'symbol':
        throw new TypeError(`a ${typeof value} cannot be encoded${at}`);
    }
    if (value === null) return null;
    if (
      raw instanceof Map ||
      raw instanceof Set ||
      raw instanceof RegExp ||
      raw instanceof Error ||
      raw instanceof ArrayBuffer ||
      ArrayBuffer.isView(raw)
    ) {
      // Only when toJSON did not turn it into something else (a Buffer's toJSON does not help: refused too).
      if (value === raw || raw instanceof Buffer) {
        const kind = (raw as object).constructor?.name ?? 'object';
        throw new TypeError(`a ${kind} cannot be sent as plain JSON${at} (it would arrive as {})`);
      }
    }
    depth.enter(this, value);
    return value;
  };
}

function unsafeInteger(text: string, at: string): RangeError {
  return new RangeError(
    `the integer ${text}${at} is beyond ±(2^53 − 1), where JSON numbers lose digits in JavaScript; send it as a decimal string`,
  );
}

/** Depth and unsafe integers of a parsed value. Iterative: JSON.parse accepted any depth. */
function check(root: unknown, maxDepth: number): void {
  const pending: [unknown, number][] = [[root, 1]];
  while (pending.length > 0) {
    const [node, level] = pending.pop() as [unknown, number];
    if (typeof node === 'number') {
      if (Number.isInteger(node) && !Number.isSafeInteger(node)) throw unsafeInteger(String(node), '');
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (level > maxDepth) throw tooDeep(maxDepth);
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' ? child !== null : typeof child === 'number')
        pending.push([child, level + 1]);
    }
  }
}
