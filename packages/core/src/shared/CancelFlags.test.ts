import { describe, expect, it } from 'vitest';
import {
  CANCELLED,
  CancelFlags,
  CancelFlagsView,
  CancelResult,
  DONE,
  ENDED,
  FAILED,
  FinishResult,
  liveWord,
  STARTED,
  TERMINATING,
} from './CancelFlags.js';

describe('CancelFlags', () => {
  it('hands out distinct slots, live and not cancelled until the caller cancels', () => {
    const flags = new CancelFlags(8);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const a = flags.acquire();
    const b = flags.acquire();
    expect(a).not.toBe(b);
    const gen = flags.generation(a);
    expect(view.isCancelled(a, gen)).toBe(false);
    expect(view.start(a, gen)).toBe(true);
    expect(view.isCancelled(a, gen)).toBe(false);
    expect(flags.cancel(a, gen)).toBe(CancelResult.running); // it had started
    expect(view.isCancelled(a, gen)).toBe(true);
    expect(view.isCancelled(b, flags.generation(b))).toBe(false);
    expect(flags.inUse).toBe(2);
  });

  it('tells the caller the handler had not started, and then the thread never starts it', () => {
    const flags = new CancelFlags(8);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const slot = flags.acquire();
    const gen = flags.generation(slot);
    expect(flags.cancel(slot, gen)).toBe(CancelResult.queued);
    expect(view.start(slot, gen)).toBe(false);
    expect(view.isCancelled(slot, gen)).toBe(true);
  });

  it('is ABA-safe: after release and reuse of a slot, the stale generation reads cancelled and cannot start or cancel', () => {
    const flags = new CancelFlags(8);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const slot = flags.acquire();
    const stale = flags.generation(slot);
    expect(view.start(slot, stale)).toBe(true);
    flags.release(slot);

    const reused = flags.acquire();
    expect(reused).toBe(slot);
    const fresh = flags.generation(reused);
    expect(fresh).not.toBe(stale);

    // The old task's holder sees its task as cancelled, even though the slot's new task is live.
    expect(view.isCancelled(slot, stale)).toBe(true);
    expect(view.start(slot, stale)).toBe(false);
    // Cancelling the old task must not touch the new one.
    expect(flags.cancel(slot, stale)).toBe(CancelResult.stale);
    expect(view.isCancelled(reused, fresh)).toBe(false);
    expect(view.start(reused, fresh)).toBe(true);
    expect(Atomics.load(view.words, slot) & CANCELLED).toBe(0);
    expect(Atomics.load(view.words, slot) & STARTED).toBe(STARTED);
  });

  it('reads a released slot as cancelled for its old task even before reuse', () => {
    const flags = new CancelFlags(8);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const slot = flags.acquire();
    const gen = flags.generation(slot);
    flags.release(slot);
    expect(view.isCancelled(slot, gen)).toBe(true);
    expect(view.start(slot, gen)).toBe(false);
  });

  it('refuses a slot beyond maxSlots with -1, and hands one out again after a release', () => {
    const flags = new CancelFlags(3);
    const slots = [flags.acquire(), flags.acquire(), flags.acquire()];
    expect(new Set(slots).size).toBe(3);
    expect(flags.acquire()).toBe(-1);
    flags.release(slots[1] as number);
    expect(flags.acquire()).toBe(slots[1]);
    expect(flags.acquire()).toBe(-1);
  });

  it('grows its buffer past the initial slots, keeping every entry, seen by a view made before growth', () => {
    const flags = new CancelFlags(5000);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const initialBytes = flags.buffer.byteLength;
    const first = flags.acquire();
    const firstGen = flags.generation(first);
    expect(view.start(first, firstGen)).toBe(true);
    expect(flags.cancel(first, firstGen)).toBe(CancelResult.running);

    const slots = [first];
    for (let i = 1; i < 3000; i++) slots.push(flags.acquire());
    expect(new Set(slots).size).toBe(3000);
    expect(flags.buffer.byteLength).toBeGreaterThan(initialBytes);
    expect(flags.buffer.byteLength).toBeLessThanOrEqual(5000 * 4);

    // The early entry kept its state through growth; the view follows the grown buffer.
    expect(view.isCancelled(first, firstGen)).toBe(true);
    const last = slots[slots.length - 1] as number;
    const lastGen = flags.generation(last);
    expect(view.words.length).toBeGreaterThan(last);
    expect(view.start(last, lastGen)).toBe(true);
    expect(view.isCancelled(last, lastGen)).toBe(false);
    expect(flags.cancel(last, lastGen)).toBe(CancelResult.running);
    expect(view.isCancelled(last, lastGen)).toBe(true);
  });

  it('wakes a thread waiting on the word when it cancels', async () => {
    const flags = new CancelFlags(4);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const slot = flags.acquire();
    const gen = flags.generation(slot);
    view.start(slot, gen);
    const wait = Atomics.waitAsync(view.words, slot, liveWord(gen) | STARTED, 5000);
    expect(wait.async).toBe(true);
    flags.cancel(slot, gen);
    await expect(wait.value).resolves.toBe('ok');
  });

  it('lets exactly one of finish and cancel own the outcome of a running task', () => {
    const flags = new CancelFlags(4);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const finishedFirst = flags.acquire();
    const genA = flags.generation(finishedFirst);
    view.start(finishedFirst, genA);
    expect(view.finish(finishedFirst, genA, false)).toBe(FinishResult.done);
    expect(flags.cancel(finishedFirst, genA)).toBe(CancelResult.done);
    expect(view.isCancelled(finishedFirst, genA)).toBe(false);

    const cancelledFirst = flags.acquire();
    const genB = flags.generation(cancelledFirst);
    view.start(cancelledFirst, genB);
    expect(flags.cancel(cancelledFirst, genB)).toBe(CancelResult.running);
    expect(view.finish(cancelledFirst, genB, false)).toBe(FinishResult.cancelled);
  });

  it('lets exactly one of a cancelled handler’s end and the claim on its thread win', () => {
    const flags = new CancelFlags(4);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const running = (): { slot: number; gen: number } => {
      const slot = flags.acquire();
      const gen = flags.generation(slot);
      view.start(slot, gen);
      return { slot, gen };
    };

    // Ended in time: the thread keeps going, and the pool leaves it be.
    const ended = running();
    flags.cancel(ended.slot, ended.gen);
    expect(view.finish(ended.slot, ended.gen, false)).toBe(FinishResult.cancelled);
    expect(flags.flags(ended.slot)).toBe(STARTED | CANCELLED | ENDED);
    expect(flags.claim(ended.slot, ended.gen)).toBe(false);

    // Claimed first: the handler that ends afterwards learns that its thread is going.
    const claimed = running();
    flags.cancel(claimed.slot, claimed.gen);
    expect(flags.claim(claimed.slot, claimed.gen)).toBe(true);
    expect(flags.claim(claimed.slot, claimed.gen)).toBe(false);
    expect(view.finish(claimed.slot, claimed.gen, true)).toBe(FinishResult.terminating);
    expect(flags.flags(claimed.slot)).toBe(STARTED | CANCELLED | TERMINATING);

    // Nothing to claim: a call not cancelled, one that finished, one not started, a stale generation.
    const live = running();
    expect(flags.claim(live.slot, live.gen)).toBe(false);
    view.finish(live.slot, live.gen, false);
    flags.cancel(live.slot, live.gen);
    expect(flags.claim(live.slot, live.gen)).toBe(false);
    flags.release(live.slot);
    const queued = flags.acquire();
    const queuedGen = flags.generation(queued);
    flags.cancel(queued, queuedGen);
    expect(flags.claim(queued, queuedGen)).toBe(false);
    expect(flags.claim(queued, queuedGen + 1)).toBe(false);
  });

  it('records whether a finished task failed', () => {
    const flags = new CancelFlags(4);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const slot = flags.acquire();
    const gen = flags.generation(slot);
    view.start(slot, gen);
    view.finish(slot, gen, true);
    expect(flags.flags(slot)).toBe(STARTED | DONE | FAILED);
  });

  it("keeps a task's start time beside its flag, through growth, and only for the task that started", () => {
    const flags = new CancelFlags(3000);
    const view = new CancelFlagsView(flags.buffer, flags.timesBuffer);
    const first = flags.acquire();
    expect(view.start(first, flags.generation(first), 1_795_000_000_123.25)).toBe(true);
    const slots = Array.from({ length: 2000 }, () => flags.acquire());
    const last = slots.at(-1) as number;
    const lastGen = flags.generation(last);
    expect(view.start(last, lastGen, 42.5)).toBe(true);
    expect(flags.startedAt(first)).toBe(1_795_000_000_123.25);
    expect(flags.startedAt(last)).toBe(42.5);
    // Cancelled before it started: its thread's start fails, the flag never says STARTED.
    const cancelled = slots[0] as number;
    const gen = flags.generation(cancelled);
    flags.cancel(cancelled, gen);
    expect(view.start(cancelled, gen, 7)).toBe(false);
    expect(flags.flags(cancelled) & STARTED).toBe(0);
  });
});
