import { describe, expect, it } from 'vitest';
import { UtilizationWindow } from './UtilizationWindow.js';

describe('UtilizationWindow', () => {
  it('is the busy time since the oldest sample over the capacity of that time', () => {
    const window = new UtilizationWindow(4, 3);
    window.sample(0, 0);
    // 4 threads for 1 s: 4 s of capacity, 1 s of it busy.
    expect(window.fraction(1_000_000, 1_000_000)).toBe(0.25);
  });

  it('forgets what happened before its oldest sample', () => {
    const window = new UtilizationWindow(2, 3);
    window.sample(0, 0);
    window.sample(1_000_000, 2_000_000); // both threads busy for the first second
    window.sample(2_000_000, 2_000_000);
    window.sample(3_000_000, 2_000_000); // the first sample is dropped
    expect(window.fraction(3_000_000, 2_000_000)).toBe(0);
    // From the oldest kept sample (1 s): one thread-second busy in 3 s of two threads.
    expect(window.fraction(4_000_000, 3_000_000)).toBeCloseTo(1 / 6, 12);
  });

  it('stays within 0…1 and reads 0 before any time passed', () => {
    const window = new UtilizationWindow(1, 2);
    expect(window.fraction(5, 5)).toBe(0);
    window.sample(10, 100);
    expect(window.fraction(10, 200)).toBe(0);
    expect(window.fraction(20, 1_000)).toBe(1);
    expect(window.fraction(20, 50)).toBe(0);
  });
});
