/**
 * Outcomes a pool thread holds — its calls finished, their outcomes not yet posted — copied into shared
 * memory before it starts a call it may be terminated over, so that a termination loses none of them.
 *
 * A thread running a batch gathers tiny calls' outcomes and posts them together (handlerHost's runBatch).
 * Past its grace period, a cancelled call still running has its thread terminated, and what that thread
 * held in its heap would go with it. Posting what it holds before each call that can be cancelled costs a
 * message per call when every call can be (`timeout()` on a bus): measured, half the throughput. Copied
 * here instead, the outcomes still go in the thread's next message; only if the thread dies first does the
 * main thread read them from here (`takeFrom`), once the thread is gone.
 *
 *   header  lines
 *   line i  owner thread id (0: free) │ records │ bytes used │ (unused) │ records …     i = 0..lines-1
 *   record  cancel slot │ generation │ outcome flags (batchCodec) | format │ value bytes │ value, padded to 4
 *
 * A value is kept as JSON text (UTF-16 code units) when JSON gives back exactly what structured clone would
 * (`jsonExact`: plain objects and dense arrays of strings, booleans, null and finite numbers other than -0),
 * else by V8's serializer — ~3.7 µs even for a small object, against ~0.3 µs for the JSON path, and this is
 * paid on every call that can be cancelled. Typed arrays and DataViews go as their own bytes only: V8 alone
 * would write the whole ArrayBuffer a view looks into — for a small Buffer, Node's whole shared pool (64 KB
 * on Node 24) — and `v8.serialize` gives a Buffer back as a Buffer, where structured clone gives a
 * Uint8Array. (So a view comes back at offset 0 of a buffer of its own; two views of one buffer come back
 * as two buffers.)
 *
 * Each thread claims a free line when it starts (a CAS on `owner`) and is its only writer: it writes a
 * record's bytes, then the count, so a reader never sees half a record. The main thread reads a line only
 * once its thread is gone, and frees it then. A thread that finds no free line, or outcomes that do not
 * fit, posts what it holds instead, as before.
 */
import { Deserializer, Serializer } from 'node:v8';

const HEADER_BYTES = 16;
const LINE_HEADER_BYTES = 16;
/** Room for the held outcomes of one thread: tiny calls' outcomes, gathered for ~1 ms. */
const LINE_DATA_BYTES = 32 * 1024;
const LINE_BYTES = LINE_HEADER_BYTES + LINE_DATA_BYTES;
const RECORD_HEADER_BYTES = 16;
/** The value's format, above the outcome's flags. */
const JSON_TEXT = 1 << 8;
const V8_SERIALIZED = 2 << 8;
const FORMAT = 3 << 8;
/** Deeper values take the V8 serializer path: the check must not overflow the stack. */
const JSON_DEPTH = 32;
/** Words of a line's header. */
const OWNER = 0;
const RECORDS = 1;
const USED = 2;

/** Outcomes read back from a line: cancel slots, generations, and the outcomes as batchCodec packs them. */
export interface ShelvedOutcomes {
  readonly c: number[];
  readonly g: number[];
  readonly f: number[];
  readonly v: unknown[];
}

/**
 * Whether `JSON.parse(JSON.stringify(value))` is exactly `structuredClone(value)`: strings, booleans, null,
 * finite numbers other than -0, and plain objects (no `toJSON`, no undefined value) and dense arrays (no
 * other keys) of them, to `JSON_DEPTH` levels.
 */
export function jsonExact(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth === JSON_DEPTH) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    let keys = 0;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) return false;
      keys++;
    }
    if (keys !== value.length) return false;
    for (let i = 0; i < value.length; i++) if (!jsonExact(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  if ('toJSON' in record) return false;
  for (const key in record) {
    if (!Object.hasOwn(record, key) || !jsonExact(record[key], depth + 1)) return false;
  }
  return true;
}

/** The kinds of view written by their own bytes; a Buffer is a Uint8Array, as structured clone gives it. */
const VIEW_KINDS = [
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
  DataView,
] as const;

/** V8's serializer, with views written as their kind and their own bytes. */
class OutcomeSerializer extends Serializer {
  constructor() {
    super();
    // Documented in Node's v8 API, absent from its type definitions.
    (
      this as unknown as { _setTreatArrayBufferViewsAsHostObjects(flag: boolean): void }
    )._setTreatArrayBufferViewsAsHostObjects(true);
  }

  /** Called by V8 for each view (see `_setTreatArrayBufferViewsAsHostObjects`). */
  _writeHostObject(object: object): void {
    const kind = VIEW_KINDS.findIndex((View) => object instanceof View);
    // Any other host object: not serializable here, and the caller posts what it holds instead.
    if (kind < 0) throw new Error('not a typed array or DataView');
    const view = object as ArrayBufferView;
    this.writeUint32(kind);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  }
}

class OutcomeDeserializer extends Deserializer {
  /** Called by V8 for each view the serializer wrote. */
  _readHostObject(): ArrayBufferView {
    const View = VIEW_KINDS[this.readUint32()] as (typeof VIEW_KINDS)[number];
    const byteLength = this.readUint32();
    const bytes = new Uint8Array(byteLength);
    bytes.set(this.readRawBytes(byteLength) as unknown as Uint8Array);
    if (View === DataView) return new DataView(bytes.buffer);
    const elementBytes = (View as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    return new (View as Uint8ArrayConstructor)(bytes.buffer, 0, byteLength / elementBytes);
  }
}

/** `value` as V8's serializer writes it (what structured clone writes, views aside: see above). */
function serialized(value: unknown): Uint8Array {
  const serializer = new OutcomeSerializer();
  serializer.writeHeader();
  serializer.writeValue(value);
  return serializer.releaseBuffer();
}

function deserialized(bytes: Uint8Array): unknown {
  const deserializer = new OutcomeDeserializer(bytes);
  deserializer.readHeader();
  return deserializer.readValue();
}

function lineWords(buffer: SharedArrayBuffer, line: number): Int32Array {
  return new Int32Array(buffer, HEADER_BYTES + line * LINE_BYTES, LINE_HEADER_BYTES / 4);
}

/** The thread side: one line, written by its thread only. @internal */
export class HeldOutcomesLine {
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly ints: DataView;
  /** The data as UTF-16 code units, for JSON text. */
  private readonly units: Uint16Array;
  private used = 0;
  private records = 0;

  private constructor(buffer: SharedArrayBuffer, line: number) {
    this.header = lineWords(buffer, line);
    const dataOffset = HEADER_BYTES + line * LINE_BYTES + LINE_HEADER_BYTES;
    this.data = new Uint8Array(buffer, dataOffset, LINE_DATA_BYTES);
    this.ints = new DataView(buffer, dataOffset, LINE_DATA_BYTES);
    this.units = new Uint16Array(buffer, dataOffset, LINE_DATA_BYTES / 2);
  }

  /** Claims a free line of `buffer` for thread `threadId`; undefined when none is free. */
  static claim(buffer: SharedArrayBuffer, threadId: number): HeldOutcomesLine | undefined {
    const lines = new Int32Array(buffer, 0, 1)[0] as number;
    for (let line = 0; line < lines; line++) {
      const header = lineWords(buffer, line);
      if (Atomics.compareExchange(header, OWNER, 0, threadId) === 0) {
        Atomics.store(header, RECORDS, 0);
        Atomics.store(header, USED, 0);
        return new HeldOutcomesLine(buffer, line);
      }
    }
    return undefined;
  }

  /**
   * Adds the outcome of the call in cancel slot `c` (generation `g`): its batchCodec flags and its value.
   * False when it does not fit, or the value cannot be serialized: the caller then posts what it holds.
   */
  add(c: number, g: number, flags: number, value: unknown): boolean {
    const at = this.used;
    const start = at + RECORD_HEADER_BYTES;
    let length: number;
    let format: number;
    if (value === undefined) {
      length = 0;
      format = JSON_TEXT;
    } else if (jsonExact(value)) {
      const text = JSON.stringify(value);
      length = 2 * text.length;
      if (start + length > LINE_DATA_BYTES) return false;
      const base = start >> 1;
      for (let i = 0; i < text.length; i++) this.units[base + i] = text.charCodeAt(i);
      format = JSON_TEXT;
    } else {
      let bytes: Uint8Array;
      try {
        bytes = serialized(value);
      } catch {
        return false;
      }
      length = bytes.length;
      if (start + length > LINE_DATA_BYTES) return false;
      this.data.set(bytes, start);
      format = V8_SERIALIZED;
    }
    const end = start + ((length + 3) & ~3);
    this.ints.setInt32(at, c, true);
    this.ints.setInt32(at + 4, g, true);
    this.ints.setInt32(at + 8, flags | format, true);
    this.ints.setInt32(at + 12, length, true);
    this.used = end;
    this.records++;
    // The count last: a reader takes only whole records.
    Atomics.store(this.header, USED, end);
    Atomics.store(this.header, RECORDS, this.records);
    return true;
  }

  /** Forgets what it holds: those outcomes were posted. */
  clear(): void {
    if (this.records === 0) return;
    this.records = 0;
    this.used = 0;
    Atomics.store(this.header, RECORDS, 0);
    Atomics.store(this.header, USED, 0);
  }
}

const utf16 = new TextDecoder('utf-16le');

/** The main-thread side: owns the buffer, reads and frees the line of a thread that is gone. @internal */
export class HeldOutcomes {
  readonly buffer: SharedArrayBuffer;
  private readonly lines: number;

  /** `lines`: a line per thread, and some for threads replaced before the line of the one gone is freed. */
  constructor(lines: number) {
    this.lines = lines;
    this.buffer = new SharedArrayBuffer(HEADER_BYTES + lines * LINE_BYTES);
    new Int32Array(this.buffer, 0, 1)[0] = lines;
  }

  /**
   * The outcomes thread `threadId` held when it died, or undefined when it held none; frees its line. Call
   * only once the thread is gone: its line must not change while it is read.
   */
  takeFrom(threadId: number): ShelvedOutcomes | undefined {
    for (let line = 0; line < this.lines; line++) {
      const header = lineWords(this.buffer, line);
      if (Atomics.load(header, OWNER) !== threadId) continue;
      const records = Atomics.load(header, RECORDS);
      const shelved = records === 0 ? undefined : this.read(line, records);
      Atomics.store(header, RECORDS, 0);
      Atomics.store(header, USED, 0);
      Atomics.store(header, OWNER, 0);
      return shelved;
    }
    return undefined;
  }

  /**
   * The outcome a dead thread left for the call in cancel slot `c` (generation `g`): its batchCodec flags
   * and value, or undefined. Reads only the lines of threads `alive` says are gone — lines no thread writes
   * any more — and leaves them to `takeFrom`.
   */
  find(c: number, g: number, alive: (threadId: number) => boolean): { f: number; v: unknown } | undefined {
    for (let line = 0; line < this.lines; line++) {
      const header = lineWords(this.buffer, line);
      const owner = Atomics.load(header, OWNER);
      const records = Atomics.load(header, RECORDS);
      if (owner === 0 || records === 0 || alive(owner)) continue;
      const shelved = this.read(line, records);
      for (let r = 0; r < records; r++) {
        if (shelved.c[r] === c && shelved.g[r] === g) return { f: shelved.f[r] as number, v: shelved.v[r] };
      }
    }
    return undefined;
  }

  private read(line: number, records: number): ShelvedOutcomes {
    const dataOffset = HEADER_BYTES + line * LINE_BYTES + LINE_HEADER_BYTES;
    const ints = new DataView(this.buffer, dataOffset, LINE_DATA_BYTES);
    const data = new Uint8Array(this.buffer, dataOffset, LINE_DATA_BYTES);
    const shelved: ShelvedOutcomes = { c: [], g: [], f: [], v: [] };
    let at = 0;
    for (let r = 0; r < records; r++) {
      const flags = ints.getInt32(at + 8, true);
      const length = ints.getInt32(at + 12, true);
      // A copy: neither decoder takes shared memory.
      const bytes = data.slice(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
      shelved.c.push(ints.getInt32(at, true));
      shelved.g.push(ints.getInt32(at + 4, true));
      shelved.f.push(flags & ~FORMAT);
      if ((flags & FORMAT) === V8_SERIALIZED) shelved.v.push(deserialized(bytes));
      else shelved.v.push(length === 0 ? undefined : JSON.parse(utf16.decode(bytes)));
      at += RECORD_HEADER_BYTES + ((length + 3) & ~3);
    }
    return shelved;
  }
}
