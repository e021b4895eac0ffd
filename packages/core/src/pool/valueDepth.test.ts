import { describe, expect, it } from 'vitest';
import { exceedsDepth } from './valueDepth.js';

function nested(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 1; i < depth; i++) {
    const child: Record<string, unknown> = {};
    node.c = child;
    node = child;
  }
  return root;
}

describe('exceedsDepth', () => {
  it('counts the value itself as level 1, each container inside as one more', () => {
    expect(exceedsDepth(1, 0)).toBe(false);
    expect(exceedsDepth({}, 1)).toBe(false);
    expect(exceedsDepth({}, 0)).toBe(true);
    expect(exceedsDepth(nested(10), 10)).toBe(false);
    expect(exceedsDepth(nested(11), 10)).toBe(true);
  });

  it('follows arrays, extra array properties, maps (keys and values), sets and error causes', () => {
    const deepList = (depth: number): unknown[] => {
      let list: unknown[] = [];
      const root = list;
      for (let i = 1; i < depth; i++) {
        const inner: unknown[] = [];
        list.push(1, inner);
        list = inner;
      }
      return root;
    };
    expect(exceedsDepth(deepList(50), 49)).toBe(true);
    expect(exceedsDepth(deepList(50), 50)).toBe(false);
    expect(exceedsDepth(Object.assign([1, 2], { extra: nested(5) }), 5)).toBe(true);
    expect(exceedsDepth(new Map([['k', nested(5)]]), 5)).toBe(true);
    expect(exceedsDepth(new Map([[nested(5), 'v']]), 5)).toBe(true);
    expect(exceedsDepth(new Set([nested(5)]), 5)).toBe(true);
    expect(exceedsDepth(new Error('top', { cause: nested(5) }), 5)).toBe(true);
    expect(exceedsDepth(new Error('top', { cause: nested(4) }), 5)).toBe(false);
  });

  it('treats binary data as a leaf and enters each shared or cyclic object once', () => {
    expect(exceedsDepth({ a: new Uint8Array(10_000), b: Buffer.alloc(10) }, 1)).toBe(false);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    cyclic.list = [cyclic, { back: cyclic }];
    expect(exceedsDepth(cyclic, 3)).toBe(false);
    let diamond: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) diamond = { a: diamond, b: diamond };
    expect(exceedsDepth(diamond, 201)).toBe(false);
    expect(exceedsDepth(diamond, 200)).toBe(true);
  });

  it('never overflows the stack itself, and reports an unreadable value as not too deep', () => {
    expect(exceedsDepth(nested(200_000), 1000)).toBe(true);
    const hostile = {
      get boom(): never {
        throw new Error('getter');
      },
    };
    Object.defineProperty(hostile, 'boom', { enumerable: true });
    expect(exceedsDepth({ hostile }, 1000)).toBe(false);
  });
});
