import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  batchCodec,
  batchedCodecOf,
  decodeFramed,
  decodeReplyChunk,
  encodeFramed,
  readRequestEntry,
  replyEntry,
  requestEntry,
  TooManyEntries,
} from './batchEnvelope.js';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const text = (data: Uint8Array): string => Buffer.from(data).toString('utf8');

describe('the batch envelope', () => {
  it('names batches in Cqrs-Codec, and reads the codec back only from a batch of this version', () => {
    expect(batchCodec('tagged-json/1')).toBe('tagged-json/1+batch/1');
    expect(batchCodec(undefined)).toBe('batch/1');
    expect(batchedCodecOf('tagged-json/1+batch/1')).toBe('tagged-json/1');
    expect(batchedCodecOf('json/1+batch/1')).toBe('json/1');
    expect(batchedCodecOf('batch/1')).toBe('');
    for (const header of [undefined, '', 'tagged-json/1', 'tagged-json/1+batch/2', 'batch/2']) {
      expect(batchedCodecOf(header), String(header)).toBeUndefined();
    }
  });

  it('frames parts after a descriptor line, parts holding line feeds and any bytes', () => {
    const parts = [bytes('{"a":"x\\ny"}'), new Uint8Array([10, 0, 255, 10]), new Uint8Array(0), bytes('"é"')];
    const entries = parts.map((part, i) => requestEntry(part.byteLength, i === 1 ? 500 : undefined));
    const body = encodeFramed(entries, parts);
    expect(text(body).split('\n')[0]).toBe('[[12],[4,500],[0],[4]]');
    const framed = decodeFramed(body, 0);
    expect(framed.entries).toEqual([[12], [4, 500], [0], [4]]);
    expect(framed.parts.map((p) => [...p])).toEqual(parts.map((p) => [...p]));
  });

  it('writes request entries with a deadline and metadata only when there are some', () => {
    expect(requestEntry(3, undefined)).toBe('[3]');
    expect(requestEntry(3, 250)).toBe('[3,250]');
    expect(requestEntry(3, undefined, '{"user":"ada"}')).toBe('[3,null,{"user":"ada"}]');
    expect(requestEntry(3, 250, '{"user":"ada"}')).toBe('[3,250,{"user":"ada"}]');
    expect(replyEntry(7, 'error', 12)).toBe('[7,"error",12]');
  });

  it('refuses a body whose framing is wrong, saying what is wrong', () => {
    const cases: [string | Uint8Array, RegExp][] = [
      ['{"a":1}', /no descriptor line/],
      ['[[1]\nx', /not JSON|no descriptor/],
      ['{not json\nx', /not JSON/],
      ['{"a":1}\nx', /not a JSON array/],
      ['[1]\nx', /entry 0 is not an array/],
      ['[[-1]]\n', /entry 0: its length must be an integer >= 0, got -1/],
      ['[[1.5]]\nxx', /entry 0: its length must be an integer >= 0, got 1.5/],
      ['[["1"]]\nx', /got "1"/],
      ['[[1],[5]]\nxab', /entry 1: its part runs past the end of the body/],
      ['[[1]]\nxy', /the parts take 1 bytes, the body holds 2/],
    ];
    for (const [body, message] of cases) {
      expect(() => decodeFramed(typeof body === 'string' ? bytes(body) : body, 0), String(body)).toThrow(
        message,
      );
    }
  });

  it('stops at a descriptor of more entries than allowed before reading any, saying how many', () => {
    const body = bytes(`[${Array.from({ length: 9 }, () => '[0]').join(',')}]\n`);
    let err: unknown;
    try {
      decodeFramed(body, 0, 8);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TooManyEntries);
    expect((err as TooManyEntries).entries).toBe(9);
    expect(decodeFramed(body, 0, 9).parts).toHaveLength(9);
  });

  it('reads any bytes as a framing whose parts fill the body exactly, or refuses them with a TypeError', () => {
    const descriptorish = fc.oneof(
      fc.json(),
      fc
        .array(fc.array(fc.oneof(fc.integer({ min: -2, max: 12 }), fc.jsonValue()), { maxLength: 3 }), {
          maxLength: 6,
        })
        .map((a) => JSON.stringify(a)),
    );
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(descriptorish, fc.uint8Array({ maxLength: 24 })).map(([head, rest]) => {
        const out = new Uint8Array(Buffer.byteLength(head) + 1 + rest.byteLength);
        out.set(bytes(`${head}\n`), 0);
        out.set(rest, out.byteLength - rest.byteLength);
        return out;
      }),
    );
    fc.assert(
      fc.property(body, (data) => {
        let framed: ReturnType<typeof decodeFramed>;
        try {
          framed = decodeFramed(data, 0);
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
          return;
        }
        const head = data.indexOf(10) + 1;
        expect(framed.parts.reduce((n, p) => n + p.byteLength, head)).toBe(data.byteLength);
        for (const entry of framed.entries) {
          try {
            readRequestEntry(entry);
          } catch (err) {
            expect(err).toBeInstanceOf(TypeError);
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads a request entry’s deadline and metadata with the rules of the single-call headers', () => {
    expect(readRequestEntry([3])).toEqual({ timeoutMs: undefined, metadata: {} });
    expect(readRequestEntry([3, null, { user: 'ada' }])).toEqual({
      timeoutMs: undefined,
      metadata: { user: 'ada' },
    });
    expect(readRequestEntry([3, 2 ** 31 - 1])).toEqual({ timeoutMs: 2 ** 31 - 1, metadata: {} });
    for (const bad of [0, -1, 1.5, '5', 2 ** 31, true]) {
      expect(() => readRequestEntry([3, bad]), String(bad)).toThrow(/bad deadline/);
    }
    for (const bad of [[], 'x', null, { user: 42 }]) {
      expect(() => readRequestEntry([3, 100, bad]), JSON.stringify(bad)).toThrow(/metadata/);
    }
    const parsed = JSON.parse('[3,null,{"__proto__":"x"}]') as unknown[];
    const { metadata } = readRequestEntry(parsed);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect(Object.isFrozen(metadata)).toBe(true);
  });

  it('reads reply chunks, and refuses one with a bad index or status', () => {
    const body = encodeFramed([replyEntry(4, 'ok', 1), replyEntry(0, 'error', 2)], [bytes('7'), bytes('{}')]);
    expect(decodeReplyChunk(body).map((o) => [o.index, o.ok, text(o.body)])).toEqual([
      [4, true, '7'],
      [0, false, '{}'],
    ]);
    expect(() => decodeReplyChunk(bytes('[[-1,"ok",0]]\n'))).toThrow(/index must be an integer >= 0/);
    expect(() => decodeReplyChunk(bytes('[[0,"maybe",0]]\n'))).toThrow(/status must be "ok" or "error"/);
    expect(() => decodeReplyChunk(bytes('[[0,"ok"]]\n'))).toThrow(/length must be an integer/);
  });
});
