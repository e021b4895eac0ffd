import { describe, expect, it } from 'vitest';
import { BusyClock, BusyTime } from './BusyTime.js';

/** A clock the test moves by hand, in µs. */
function manualClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(micros: number): void {
      now += micros;
    },
  };
}

describe('BusyTime', () => {
  it('counts an interval from the first call taken to the last one given back, once per thread', () => {
    const busy = new BusyTime(2);
    const clock = manualClock();
    const thread = new BusyClock(busy.buffer, 11, clock.now);
    thread.enter();
    clock.advance(300);
    // A second call held at once (concurrentTasksPerThread, a nested call): still one busy thread.
    thread.enter();
    clock.advance(200);
    thread.leave();
    clock.advance(100);
    thread.leave();
    expect(busy.busyMicros(clock.now())).toBe(600);
    clock.advance(1_000);
    expect(busy.busyMicros(clock.now())).toBe(600);
  });

  it('adds the threads together and shows a running interval as it runs', () => {
    const busy = new BusyTime(2);
    const clock = manualClock();
    const a = new BusyClock(busy.buffer, 1, clock.now);
    const b = new BusyClock(busy.buffer, 2, clock.now);
    a.enter();
    b.enter();
    clock.advance(50);
    b.leave();
    clock.advance(150);
    // a still runs: 200 µs so far, b ran 50.
    expect(busy.busyMicros(clock.now())).toBe(250);
    clock.advance(100);
    a.leave();
    expect(busy.busyMicros(clock.now())).toBe(350);
  });

  it('never reports less than before, even when a reader reads with a clock behind the thread', () => {
    const busy = new BusyTime(1);
    const clock = manualClock();
    const thread = new BusyClock(busy.buffer, 3, clock.now);
    thread.enter();
    clock.advance(500);
    expect(busy.busyMicros(clock.now())).toBe(500);
    // The reader's clock reads 20 µs earlier than the thread's did.
    expect(busy.busyMicros(clock.now() - 20)).toBe(500);
    thread.leave();
    expect(busy.busyMicros(clock.now())).toBe(500);
  });

  it('keeps counts beyond 32 bits exact', () => {
    const busy = new BusyTime(1);
    const clock = manualClock(2 ** 52);
    const thread = new BusyClock(busy.buffer, 4, clock.now);
    for (let i = 0; i < 3; i++) {
      thread.enter();
      clock.advance(2 ** 32 + 7);
      thread.leave();
    }
    expect(busy.busyMicros(clock.now())).toBe(3 * (2 ** 32 + 7));
  });

  it("frees a gone thread's line, counting its interrupted call up to then, for the thread that replaces it", () => {
    const busy = new BusyTime(1);
    const clock = manualClock();
    const gone = new BusyClock(busy.buffer, 5, clock.now);
    gone.enter();
    clock.advance(400);
    busy.release(5, clock.now());
    clock.advance(1_000);
    // Not growing any more: the interval ended when the line was freed.
    expect(busy.busyMicros(clock.now())).toBe(400);
    // The thread, still running for a moment, finds its line gone and adds nothing.
    gone.leave();
    expect(busy.busyMicros(clock.now())).toBe(400);
    // Every line can be claimed again: 2 × threads + 2 of them.
    const next = Array.from({ length: 4 }, (_, i) => new BusyClock(busy.buffer, 100 + i, clock.now));
    for (const thread of next) thread.enter();
    clock.advance(10);
    for (const thread of next) thread.leave();
    expect(busy.busyMicros(clock.now())).toBe(440);
  });

  it('counts the threads that find no free line into the overflow, when each interval ends', () => {
    const busy = new BusyTime(1);
    const clock = manualClock();
    const owners = Array.from({ length: 4 }, (_, i) => new BusyClock(busy.buffer, 1 + i, clock.now));
    const extra = new BusyClock(busy.buffer, 99, clock.now);
    extra.enter();
    clock.advance(70);
    expect(busy.busyMicros(clock.now())).toBe(0);
    extra.leave();
    expect(busy.busyMicros(clock.now())).toBe(70);
    expect(owners).toHaveLength(4);
  });

  it('reads a line being written from its last consistent read, and frees it once the writer is done', () => {
    const busy = new BusyTime(1);
    const clock = manualClock();
    const thread = new BusyClock(busy.buffer, 6, clock.now);
    thread.enter();
    clock.advance(100);
    thread.leave();
    thread.enter();
    clock.advance(100);
    expect(busy.busyMicros(clock.now())).toBe(200);
    // As a reader sees a writer in mid-write: the line's sequence word odd.
    const words = new Uint32Array(busy.buffer);
    const seq = 32 + 0;
    Atomics.add(words, seq, 1);
    clock.advance(100);
    expect(busy.busyMicros(clock.now())).toBe(300);
    // The pool lets the thread go while the line is locked: frozen at that time, freed at a later read.
    busy.release(6, clock.now());
    clock.advance(500);
    expect(busy.busyMicros(clock.now())).toBe(300);
    Atomics.sub(words, seq, 1);
    expect(busy.busyMicros(clock.now())).toBe(300);
    expect(Atomics.load(words, seq + 1)).toBe(0);
  });
});
