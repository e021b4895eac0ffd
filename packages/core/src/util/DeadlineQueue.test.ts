import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from './DeadlineQueue.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Adds and removes `n` deadlines, in a frame of its own (a suspended async test keeps its registers). */
function settleMany(queue: DeadlineQueue, n: number): WeakRef<object>[] {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < n; i++) {
    const entry = queue.add(() => {});
    queue.remove(entry);
    refs.push(new WeakRef(entry));
  }
  return refs;
}

describe('DeadlineQueue', () => {
  it('fires each deadline ms after it was added, in order, with one timer', async () => {
    const queue = new DeadlineQueue(100);
    const fired: string[] = [];
    queue.add(() => fired.push('a'));
    await vi.advanceTimersByTimeAsync(30);
    queue.add(() => fired.push('b'));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(69);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(29);
    expect(fired).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never fires a removed deadline, and releases its timer when none is pending', async () => {
    const queue = new DeadlineQueue(50);
    const fired: string[] = [];
    const a = queue.add(() => fired.push('a'));
    const b = queue.add(() => fired.push('b'));
    queue.add(() => fired.push('c'));
    queue.remove(b);
    queue.remove(a);
    expect(queue.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(fired).toEqual(['c']);
    const d = queue.add(() => fired.push('d'));
    expect(vi.getTimerCount()).toBe(1);
    queue.remove(d);
    // Unref'd, not cleared (sequential calls would arm and clear a timer each): it fires once, idle, and is gone.
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual(['c']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps up with many deadlines removed out of order without losing one', async () => {
    const queue = new DeadlineQueue(10);
    const fired = new Set<number>();
    const entries = Array.from({ length: 5000 }, (_, i) => queue.add(() => fired.add(i)));
    for (let i = 0; i < 5000; i += 2) queue.remove(entries[i] as (typeof entries)[number]);
    await vi.advanceTimersByTimeAsync(10);
    expect(fired.size).toBe(2500);
    expect([...fired].every((i) => i % 2 === 1)).toBe(true);
    expect(queue.pending).toBe(0);
  });

  it('lets go of a removed deadline at once, also one behind an older deadline still pending', async () => {
    vi.useRealTimers();
    const queue = new DeadlineQueue(60_000);
    const oldest = queue.add(() => {});
    // Deadlines are a call's whole state (timeout()'s TimedCall): settled ones must not outlive their call.
    const settled = settleMany(queue, 3000);
    const fired = queue.add(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(settled.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    expect(queue.pending).toBe(2);
    queue.remove(oldest);
    queue.remove(fired);
    expect(queue.pending).toBe(0);
  });

  it('fires later deadlines added while an earlier one fires (a callback may remove and add)', async () => {
    const queue = new DeadlineQueue(20);
    const fired: string[] = [];
    const first = queue.add(() => {
      fired.push('first');
      queue.remove(first);
      queue.add(() => fired.push('second'));
    });
    await vi.advanceTimersByTimeAsync(20);
    expect(fired).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(20);
    expect(fired).toEqual(['first', 'second']);
  });
});
