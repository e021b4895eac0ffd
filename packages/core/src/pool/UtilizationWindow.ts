/**
 * The busy fraction of a pool's threads over a recent window, from samples of its busy-time total
 * (BusyTime.ts) taken at a steady pace: `(busy now − busy at the oldest sample) / (threads × elapsed)`.
 * Pure arithmetic on the times and totals it is given, so tests drive it without a clock.
 * @internal
 */
export class UtilizationWindow {
  private readonly times: number[] = [];
  private readonly totals: number[] = [];

  /**
   * @param threads the pool's thread capacity (its `threads` option): the most busy time per µs.
   * @param keep samples kept; the window reaches back to the oldest of them.
   */
  constructor(
    private readonly threads: number,
    private readonly keep: number,
  ) {}

  /** Adds a sample: at `at` µs, the busy total was `busyMicros`; drops the oldest beyond `keep`. */
  sample(at: number, busyMicros: number): void {
    this.times.push(at);
    this.totals.push(busyMicros);
    if (this.times.length > this.keep) {
      this.times.shift();
      this.totals.shift();
    }
  }

  /** The busy fraction, 0…1, from the oldest sample to `at`, where the total is `busyMicros`; 0 before any time passed. */
  fraction(at: number, busyMicros: number): number {
    const from = this.times[0];
    const busyThen = this.totals[0];
    if (from === undefined || busyThen === undefined || !(at > from)) return 0;
    const share = (busyMicros - busyThen) / (this.threads * (at - from));
    return Math.min(1, Math.max(0, share));
  }
}
