/**
 * The handler modules registered on the main thread, in shared memory. A task names its module by index,
 * never by URL, so a pool thread can only ever import a module the main thread registered.
 *
 *   Int32 [0] count of entries (published last, with Atomics.store)
 *   Int32 [1] bytes used after the header
 *   then per entry: Uint32 byte length, UTF-8 URL, padded to 4 bytes
 *
 * Append-only: entries never move, so a thread caches what it has decoded and reads only new ones.
 */
const headerBytes = 8;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The thread side: resolves module indices to URLs. @internal */
export class ModuleTableView {
  private readonly urls: string[] = [];
  private offset = headerBytes;
  constructor(readonly buffer: SharedArrayBuffer) {}

  /** The URL of module `id`, or undefined when no such module was registered. */
  url(id: number): string | undefined {
    // An index arrives in a structured-cloned task: anything but a non-negative integer ('length',
    // 'constructor', 1.5) would reach the array's own properties, and their string forms ('1', 'function
    // Array() …') would be imported as specifiers that no one registered.
    if (!Number.isInteger(id) || id < 0) return undefined;
    if (id >= this.urls.length) this.readNew();
    return this.urls[id];
  }

  private readNew(): void {
    const header = new Int32Array(this.buffer, 0, 2);
    const count = Atomics.load(header, 0);
    const bytes = new Uint8Array(this.buffer);
    const view = new DataView(this.buffer);
    while (this.urls.length < count) {
      const length = view.getUint32(this.offset, true);
      // Copy out of shared memory first: TextDecoder refuses views of a SharedArrayBuffer.
      const copy = bytes.slice(this.offset + 4, this.offset + 4 + length);
      this.urls.push(decoder.decode(copy));
      this.offset += 4 + align4(length);
    }
  }
}

/** The main-thread side: appends modules. @internal */
export class ModuleTable {
  private readonly ids = new Map<string, number>();
  readonly buffer: SharedArrayBuffer;
  private used = headerBytes;

  constructor(maxBytes: number) {
    this.buffer = new SharedArrayBuffer(4096, { maxByteLength: maxBytes });
  }

  /** The index of `url`, appending it on first use; -1 when the table is full. */
  register(url: string): number {
    const known = this.ids.get(url);
    if (known !== undefined) return known;
    const encoded = encoder.encode(url);
    const needed = this.used + 4 + align4(encoded.length);
    if (needed > this.buffer.maxByteLength) return -1;
    if (needed > this.buffer.byteLength) {
      this.buffer.grow(Math.min(this.buffer.maxByteLength, Math.max(needed, this.buffer.byteLength * 2)));
    }
    new DataView(this.buffer).setUint32(this.used, encoded.length, true);
    new Uint8Array(this.buffer).set(encoded, this.used + 4);
    this.used = needed;
    const header = new Int32Array(this.buffer, 0, 2);
    header[1] = this.used - headerBytes;
    const id = this.ids.size;
    this.ids.set(url, id);
    // Published after the bytes: a thread that sees the new count also sees the entry (Atomics are seq-cst).
    Atomics.store(header, 0, id + 1);
    return id;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
