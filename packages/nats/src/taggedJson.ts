import type { Codec } from './Codec.js';
import type { CodecLimits, ResolvedLimits } from './codecLimits.js';
import {
  bigintText,
  DepthTracker,
  resolveLimits,
  tooDeep,
  tooManyDigits,
  tooManyNumericKeys,
} from './codecLimits.js';

/**
 * A tagged-JSON {@link Codec} with the given limits (see {@link CodecLimits}); {@link taggedJson} is the one
 * with the defaults. Pass it to both sides: `serve(nc, bus, { codec })` and `new RemoteClient(nc, { codec })`.
 *
 * JSON, with what JSON loses written as tagged objects `{"$t": tag, …}` — so a value comes out as structured
 * clone would hand it over between threads:
 *
 * | value | on the wire |
 * | --- | --- |
 * | `undefined` (top level, in arrays, as a field) | `{"$t":"u"}` |
 * | `NaN`, `±Infinity`, `-0` | `{"$t":"n","v":"NaN"}` … |
 * | `bigint` | `{"$t":"b","v":"123"}` (decimal digits, optional `-`) |
 * | `Date` (invalid ones too) | `{"$t":"d","v":ms or null}` |
 * | `Uint8Array`, `Buffer`, other typed arrays, `ArrayBuffer` | `{"$t":"x","k":"Uint8Array","v":base64}` |
 * | `Map`, `Set` | `{"$t":"m","v":[[k,v],…]}`, `{"$t":"s","v":[…]}` |
 * | `RegExp` | `{"$t":"r","v":source,"f":flags}` |
 * | `Error` | `{"$t":"e","name","message","stack"?}` |
 * | an object with its own `$t` field | `{"$t":"o","v":[[key,value],…]}` (escaped, so it never reads as a tag) |
 *
 * Other objects travel as their own enumerable fields (class instances arrive as plain objects, as with
 * structured clone), unless they define `toJSON`, which is used. Functions, symbols and cycles are refused
 * (`encode` throws a TypeError), and so is a value beyond a limit (a RangeError naming it). A field named
 * `__proto__` stays a field; decoding never sets a prototype.
 *
 * @throws CqrsError `INVALID_REGISTRATION` for a limit that is not a positive integer (or `maxDepth` over 1,000).
 */
export function createTaggedJson(limits?: CodecLimits): Codec {
  const resolved = resolveLimits(limits, 'createTaggedJson: limits');
  return {
    name: 'tagged-json',
    id: 'tagged-json/1',
    encode(value: unknown): Uint8Array {
      // Plain JSON data needs no tags: written without the replacer, which costs a call per value.
      const text = isPlain(value, 1, resolved.maxDepth)
        ? JSON.stringify(value)
        : JSON.stringify(value, replacerFor(resolved));
      return Buffer.from(text ?? 'null', 'utf8');
    },
    decode(bytes: Uint8Array): unknown {
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
      // JSON.parse itself is iterative in V8 (no stack overflow on deep text); the walk below stops at maxDepth.
      return new Reviver(resolved).revive(JSON.parse(text), 1);
    },
  };
}

/** The default {@link Codec}: tagged JSON (see {@link createTaggedJson}) with the default {@link CodecLimits}. */
export const taggedJson: Codec = createTaggedJson();

const typedArrays: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

/**
 * Whether `value` is data that tagged JSON writes as JSON.stringify does: strings, booleans, `null`, finite
 * numbers other than `-0`, and arrays and plain objects (no prototype but Object's, no `toJSON`, no own
 * `$t`) of these, within the depth limit. Anything else — including what would make `encode` throw — goes
 * through the replacer, which tags it or refuses it with the precise error. A getter that throws here does
 * the same.
 */
function isPlain(value: unknown, depth: number, maxDepth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > maxDepth) return false;
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (!isPlain(value[i], depth + 1, maxDepth)) return false;
      return true;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if ((proto !== Object.prototype && proto !== null) || 'toJSON' in value || Object.hasOwn(value, '$t')) {
      return false;
    }
    for (const key in value) {
      if (!isPlain((value as Record<string, unknown>)[key], depth + 1, maxDepth)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** A replacer for one `encode` call: it keeps the walk's depth and the numeric keys seen (per call, so a
 * `toJSON` that encodes something else meanwhile does not disturb it). */
function replacerFor(limits: ResolvedLimits): (this: unknown, key: string, value: unknown) => unknown {
  const depth = new DepthTracker(limits.maxDepth);
  let numericKeysLeft = limits.maxNumericKeys;
  const countNumeric = (key: unknown): void => {
    if ((typeof key === 'number' || typeof key === 'bigint') && --numericKeysLeft < 0) {
      throw tooManyNumericKeys(limits.maxNumericKeys);
    }
  };
  // `this` is the holder, so `this[key]` is the value before `toJSON` ran (a Date is still a Date, a Buffer
  // still a Buffer).
  return function replacer(this: unknown, key: string, value: unknown): unknown {
    const out = tag(this, key, value);
    // Every object written counts toward the depth, tag wrappers included: decoding counts them the same way.
    if (typeof out === 'object' && out !== null) depth.enter(this, out);
    return out;
  };

  function tag(holder: unknown, key: string, value: unknown): unknown {
    const raw = (holder as Record<string, unknown>)[key];
    switch (typeof raw) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (Number.isFinite(raw) && !Object.is(raw, -0)) return value;
        return { $t: 'n', v: String(Object.is(raw, -0) ? '-0' : raw) };
      case 'undefined':
        return { $t: 'u' };
      case 'bigint':
        return { $t: 'b', v: bigintText(raw, limits.maxBigIntDigits) };
      case 'function':
        throw new TypeError(`a function cannot be encoded${key === '' ? '' : ` (at '${key}')`}`);
      case 'symbol':
        throw new TypeError(`a symbol cannot be encoded${key === '' ? '' : ` (at '${key}')`}`);
    }
    if (raw === null) return null;
    if (raw instanceof Date) {
      const ms = raw.getTime();
      return { $t: 'd', v: Number.isNaN(ms) ? null : ms };
    }
    if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) {
      const kind = Buffer.isBuffer(raw) ? 'Buffer' : raw.constructor.name;
      const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      return { $t: 'x', k: kind, v: bytes.toString('base64') };
    }
    if (raw instanceof ArrayBuffer)
      return { $t: 'x', k: 'ArrayBuffer', v: Buffer.from(raw).toString('base64') };
    if (raw instanceof RegExp) return { $t: 'r', v: raw.source, f: raw.flags };
    if (raw instanceof Map) {
      for (const k of raw.keys()) countNumeric(k);
      return { $t: 'm', v: [...raw] };
    }
    if (raw instanceof Set) {
      for (const k of raw) countNumeric(k);
      return { $t: 's', v: [...raw] };
    }
    if (raw instanceof Error) {
      const err: Record<string, unknown> = { $t: 'e', name: String(raw.name), message: String(raw.message) };
      if (typeof raw.stack === 'string') err.stack = raw.stack;
      return err;
    }
    // `value` may be what `toJSON` made of `raw`; a user object with its own `$t` is escaped as entries.
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, '$t')) {
      return { $t: 'o', v: Object.entries(value) };
    }
    return value;
  }
}

/** Decodes tags in place, bottom-up, for one `decode` call. JSON.parse made every object, so they are ours to change. */
class Reviver {
  private numericKeysLeft: number;

  constructor(private readonly limits: ResolvedLimits) {
    this.numericKeysLeft = limits.maxNumericKeys;
  }

  /** `node` at nesting `depth` (the top-level value is 1). */
  revive(node: unknown, depth: number): unknown {
    if (typeof node !== 'object' || node === null) return node;
    if (depth > this.limits.maxDepth) throw tooDeep(this.limits.maxDepth);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) node[i] = this.revive(node[i], depth + 1);
      return node;
    }
    const obj = node as Record<string, unknown>;
    if (Object.hasOwn(obj, '$t')) return this.untag(obj, depth);
    for (const key of Object.keys(obj)) {
      const value = obj[key];
      if (typeof value === 'object' && value !== null) setField(obj, key, this.revive(value, depth + 1));
    }
    return obj;
  }

  private untag(tagged: Record<string, unknown>, depth: number): unknown {
    const v = tagged.v;
    switch (tagged.$t) {
      case 'u':
        return undefined;
      case 'n':
        if (v === 'NaN') return Number.NaN;
        if (v === 'Infinity') return Number.POSITIVE_INFINITY;
        if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
        if (v === '-0') return -0;
        break;
      case 'b':
        if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) {
          const digits = v.startsWith('-') ? v.length - 1 : v.length;
          if (digits > this.limits.maxBigIntDigits) throw tooManyDigits(digits, this.limits.maxBigIntDigits);
          return BigInt(v);
        }
        break;
      case 'd':
        if (v === null) return new Date(Number.NaN);
        if (typeof v === 'number') return new Date(v);
        break;
      case 'x':
        if (typeof v === 'string' && typeof tagged.k === 'string')
          return binary(tagged.k, Buffer.from(v, 'base64'));
        break;
      case 'm':
        if (Array.isArray(v)) {
          const entries = this.revive(v, depth + 1) as unknown[];
          for (const entry of entries) {
            if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError('malformed $t:m entry');
            this.countNumeric(entry[0]);
          }
          return new Map(entries as [unknown, unknown][]);
        }
        break;
      case 's':
        if (Array.isArray(v)) {
          const members = this.revive(v, depth + 1) as unknown[];
          for (const member of members) this.countNumeric(member);
          return new Set(members);
        }
        break;
      case 'r':
        if (typeof v === 'string' && typeof tagged.f === 'string') return new RegExp(v, tagged.f);
        break;
      case 'e':
        if (typeof tagged.message === 'string' && typeof tagged.name === 'string') {
          return rebuildError(tagged.name, tagged.message, tagged.stack);
        }
        break;
      case 'o':
        if (Array.isArray(v)) {
          // Revived as a whole, like a Map's entries: the entry arrays count as levels, as when encoding.
          const entries = this.revive(v, depth + 1) as unknown[];
          const out: Record<string, unknown> = {};
          for (const entry of entries) {
            if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') {
              throw new TypeError('malformed $t:o entry');
            }
            setField(out, entry[0], entry[1]);
          }
          return out;
        }
        break;
    }
    throw new TypeError(`malformed tagged value (${JSON.stringify(tagged.$t)})`);
  }

  private countNumeric(key: unknown): void {
    if ((typeof key === 'number' || typeof key === 'bigint') && --this.numericKeysLeft < 0) {
      throw tooManyNumericKeys(this.limits.maxNumericKeys);
    }
  }
}

function rebuildError(name: string, message: string, stack: unknown): Error {
  // No stack capture: it would describe this decoder (and costs microseconds per error); the sender's stack,
  // when it sent one, is what the error carries.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let err: Error;
  try {
    err = new Error(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
  Object.defineProperty(err, 'name', { value: name, writable: true, configurable: true });
  err.stack = typeof stack === 'string' ? stack : message === '' ? name : `${name}: ${message}`;
  return err;
}

function binary(kind: string, bytes: Buffer): unknown {
  if (kind === 'Buffer') return bytes;
  // A fresh, exactly sized ArrayBuffer: Buffer.from may share a pooled one, and a typed array must be aligned.
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  if (kind === 'ArrayBuffer') return copy;
  const View = Object.hasOwn(typedArrays, kind) ? typedArrays[kind] : undefined;
  if (View === undefined) throw new TypeError(`unknown binary kind '${kind}'`);
  return new View(copy);
}

// defineProperty, not assignment: a field named `__proto__` must stay a field, not set the prototype.
function setField(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}
