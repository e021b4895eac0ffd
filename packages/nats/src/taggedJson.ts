import type { Codec } from './Codec.js';

/**
 * The default {@link Codec}: JSON, with what JSON loses written as tagged objects `{"$t": tag, …}` — so a
 * value comes out as structured clone would hand it over between threads:
 *
 * | value | on the wire |
 * | --- | --- |
 * | `undefined` (top level, in arrays, as a field) | `{"$t":"u"}` |
 * | `NaN`, `±Infinity`, `-0` | `{"$t":"n","v":"NaN"}` … |
 * | `bigint` | `{"$t":"b","v":"123"}` |
 * | `Date` (invalid ones too) | `{"$t":"d","v":ms or null}` |
 * | `Uint8Array`, `Buffer`, other typed arrays, `ArrayBuffer` | `{"$t":"x","k":"Uint8Array","v":base64}` |
 * | `Map`, `Set` | `{"$t":"m","v":[[k,v],…]}`, `{"$t":"s","v":[…]}` |
 * | `RegExp` | `{"$t":"r","v":source,"f":flags}` |
 * | `Error` | `{"$t":"e","name","message","stack"?}` |
 * | an object with its own `$t` field | `{"$t":"o","v":[[key,value],…]}` (escaped, so it never reads as a tag) |
 *
 * Other objects travel as their own enumerable fields (class instances arrive as plain objects, as with
 * structured clone), unless they define `toJSON`, which is used. Functions, symbols and cycles are refused
 * (`encode` throws a TypeError). A field named `__proto__` stays a field; decoding never sets a prototype.
 */
export const taggedJson: Codec = {
  name: 'tagged-json',
  encode(value: unknown): Uint8Array {
    return Buffer.from(JSON.stringify(value, replacer) ?? 'null', 'utf8');
  },
  decode(bytes: Uint8Array): unknown {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    return revive(JSON.parse(text));
  },
};

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

// `this` is the holder, so `this[key]` is the value before `toJSON` ran (a Date is still a Date, a Buffer
// still a Buffer).
function replacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
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
      return { $t: 'b', v: raw.toString() };
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
  if (raw instanceof Map) return { $t: 'm', v: [...raw] };
  if (raw instanceof Set) return { $t: 's', v: [...raw] };
  if (raw instanceof RegExp) return { $t: 'r', v: raw.source, f: raw.flags };
  if (raw instanceof Error) {
    const err: Record<string, unknown> = { $t: 'e', name: raw.name, message: raw.message };
    if (typeof raw.stack === 'string') err.stack = raw.stack;
    return err;
  }
  // `value` may be what `toJSON` made of `raw`; a user object with its own `$t` is escaped as entries.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, '$t')) {
    return { $t: 'o', v: Object.entries(value) };
  }
  return value;
}

/** Decodes tags in place, bottom-up. JSON.parse made every object, so they are ours to change. */
function revive(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = revive(node[i]);
    return node;
  }
  const obj = node as Record<string, unknown>;
  if (Object.hasOwn(obj, '$t')) return untag(obj);
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (typeof value === 'object' && value !== null) setField(obj, key, revive(value));
  }
  return obj;
}

function untag(tagged: Record<string, unknown>): unknown {
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
      if (typeof v === 'string') return BigInt(v);
      break;
    case 'd':
      if (v === null) return new Date(Number.NaN);
      if (typeof v === 'number') return new Date(v);
      break;
    case 'x':
      if (typeof v === 'string') return binary(String(tagged.k), Buffer.from(v, 'base64'));
      break;
    case 'm':
      if (Array.isArray(v)) return new Map(revive(v) as [unknown, unknown][]);
      break;
    case 's':
      if (Array.isArray(v)) return new Set(revive(v) as unknown[]);
      break;
    case 'r':
      if (typeof v === 'string' && typeof tagged.f === 'string') return new RegExp(v, tagged.f);
      break;
    case 'e': {
      const err = new Error(String(tagged.message));
      Object.defineProperty(err, 'name', { value: String(tagged.name), writable: true, configurable: true });
      if (typeof tagged.stack === 'string') err.stack = tagged.stack;
      return err;
    }
    case 'o':
      if (Array.isArray(v)) {
        const out: Record<string, unknown> = {};
        for (const entry of v) {
          if (!Array.isArray(entry) || typeof entry[0] !== 'string')
            throw new TypeError('malformed $t:o entry');
          setField(out, entry[0], revive(entry[1]));
        }
        return out;
      }
      break;
  }
  throw new TypeError(`malformed tagged value (${JSON.stringify(tagged.$t)})`);
}

function binary(kind: string, bytes: Buffer): unknown {
  if (kind === 'Buffer') return bytes;
  // A fresh, exactly sized ArrayBuffer: Buffer.from may share a pooled one, and a typed array must be aligned.
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  if (kind === 'ArrayBuffer') return copy;
  const View = typedArrays[kind];
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
