import { describe, expect, it } from 'vitest';
import { decodeMetadata, encodeMetadata } from './metadataHeader.js';

describe('the metadata header', () => {
  it('round-trips strings with line breaks and non-ASCII, in a value holding no line break', () => {
    const metadata = { correlationId: 'c-1', note: 'a\r\nb', who: 'José 🚀' };
    const header = encodeMetadata(metadata);
    expect(header).not.toMatch(/[\r\n]/);
    expect(decodeMetadata(header)).toEqual(metadata);
  });

  it('refuses anything but an object of strings', () => {
    for (const header of ['[]', 'null', '"x"', '{"a":1}', '{"a":{"b":"c"}}', '{']) {
      expect(() => decodeMetadata(header), header).toThrow();
    }
  });

  it('keeps a __proto__ key a plain key', () => {
    const decoded = decodeMetadata('{"__proto__":"x","a":"b"}');
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['__proto__', 'a']);
  });
});
