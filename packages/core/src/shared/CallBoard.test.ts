import { describe, expect, it } from 'vitest';
import { CallBoard, CallBoardView, ENTRY_BYTES } from './CallBoard.js';

describe('CallBoard', () => {
  it('gives the oldest pinned message to the first thread that asks, each message once', () => {
    const board = new CallBoard(4);
    const thread = new CallBoardView(board.buffer);
    expect(board.pinned).toBe(false);
    expect(thread.take(1)).toBeUndefined();
    for (const n of [1, 2, 3]) {
      const e = board.freeEntry();
      expect(board.pin(e, { n, w: new Int32Array([n, n]) })).toBe(true);
    }
    expect(thread.pinned).toBe(true);
    const first = thread.take(7);
    expect(first?.message).toEqual({ n: 1, w: new Int32Array([1, 1]) });
    expect(new CallBoardView(board.buffer).take(8)?.message).toMatchObject({ n: 2 });
    // A taken entry is not free until its thread releases it; the board names the thread meanwhile.
    expect(board.takenBy(first?.entry as number, 7)).toBe(true);
    expect(board.takenBy(first?.entry as number, 8)).toBe(false);
    thread.release(first?.entry as number);
    expect(board.takenBy(first?.entry as number, 7)).toBe(false);
    expect(thread.take(7)?.message).toMatchObject({ n: 3 });
    expect(thread.pinned).toBe(false);
    expect(thread.take(7)).toBeUndefined();
  });

  it('keeps the pin order across reused entries', () => {
    const board = new CallBoard(2);
    const thread = new CallBoardView(board.buffer);
    board.pin(board.freeEntry(), 'a');
    board.pin(board.freeEntry(), 'b');
    expect(board.freeEntry()).toBe(-1);
    const a = thread.take(1);
    thread.release(a?.entry as number);
    // 'c' goes into the entry 'a' left, ahead of 'b' in the array but pinned after it.
    board.pin(board.freeEntry(), 'c');
    expect(thread.take(1)?.message).toBe('b');
    expect(thread.take(1)?.message).toBe('c');
  });

  it('lets the main thread take back only what no thread took', () => {
    const board = new CallBoard(2);
    const thread = new CallBoardView(board.buffer);
    const a = board.freeEntry();
    board.pin(a, 'a');
    const b = board.freeEntry();
    board.pin(b, 'b');
    expect(thread.take(3)?.entry).toBe(a);
    expect(board.reclaim(a)).toBe(false);
    expect(board.reclaim(b)).toBe(true);
    expect(board.reclaim(b)).toBe(false);
    expect(board.pinned).toBe(false);
    expect(thread.take(3)).toBeUndefined();
    expect(board.freeEntry()).toBe(b);
  });

  it('refuses a message that does not clone or does not fit, and pins nothing', () => {
    const board = new CallBoard(1);
    const e = board.freeEntry();
    expect(board.pin(e, { f: () => 1 })).toBe(false);
    expect(board.pin(e, { s: new SharedArrayBuffer(8) })).toBe(false);
    expect(board.pin(e, 'x'.repeat(ENTRY_BYTES))).toBe(false);
    expect(board.pinned).toBe(false);
    expect(board.freeEntry()).toBe(e);
    expect(board.pin(e, 'x'.repeat(ENTRY_BYTES / 2))).toBe(true);
  });
});
