/** One pending deadline. @internal */
export interface Deadline {
  /** When it falls due (`Date.now()` time); set by the queue. */
  at: number;
  /** Its place in the queue; set by the queue. */
  index: number;
  fire(): void;
  done: boolean;
}

/** What a place in the queue holds once its entry is settled or fired: the entry itself may be collected. */
const PASSED: Deadline = { at: 0, index: -1, fire() {}, done: true };

/**
 * Deadlines that all lie the same `ms` after they were added, so they fall due in the order they were
 * added: a FIFO with a single timer armed for its head, instead of a Node timer per call (setTimeout plus
 * clearTimeout cost ~0.4 µs a call, measured, more than the rest of `timeout()`). Settled entries are only
 * marked; the head skips past them, so both add and remove are O(1) amortized.
 *
 * Time is `Date.now()`: millisecond resolution is what a timeout needs, and it is what fake timers drive.
 * The timer is referenced while any deadline is pending (a pending timeout keeps the process alive, as a
 * per-call timer did). When none is, it is unref'd rather than cleared: sequential calls would otherwise
 * arm and clear a timer each, which is the cost this class exists to avoid. It then fires once, idle,
 * finds nothing due and is gone.
 *
 * The queue lets go of an entry as soon as it is settled: under load, calls settle out of order, and settled
 * entries behind an older pending one (hundreds, at 1000 calls in flight) would otherwise be kept — a pooled
 * call's whole state under `timeout()` — through garbage collections they should not live through.
 * @internal
 */
export class DeadlineQueue {
  private entries: Deadline[] = [];
  private head = 0;
  /** The `index` of `entries[0]`: indexes count every entry ever scheduled, so compacting moves none. */
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;
  private held = false;

  constructor(private readonly ms: number) {}

  /** Calls `fire` in `ms` unless `remove` is called first. */
  add(fire: () => void): Deadline {
    const entry: Deadline = { at: 0, index: 0, fire, done: false };
    this.schedule(entry);
    return entry;
  }

  /**
   * As `add`, for an entry the caller made: an object that keeps its call's state can be its own deadline,
   * with no closure or entry made per call.
   */
  schedule(entry: Deadline): void {
    entry.at = Date.now() + this.ms;
    entry.done = false;
    entry.index = this.offset + this.entries.length;
    this.entries.push(entry);
    // Deadlines only grow, so an armed timer is never later than this one: it fires, and re-arms for the head.
    if (this.timer === undefined) this.arm(entry.at);
    else if (!this.held) {
      this.timer.ref();
      this.held = true;
    }
  }

  /** The deadline no longer matters (its call settled). */
  remove(entry: Deadline): void {
    entry.done = true;
    const at = entry.index - this.offset;
    if (at >= this.head && this.entries[at] === entry) this.entries[at] = PASSED;
    this.trim();
    if (this.head === this.entries.length && this.timer !== undefined && this.held) {
      this.timer.unref();
      this.held = false;
    }
  }

  get pending(): number {
    let n = 0;
    for (let i = this.head; i < this.entries.length; i++) if (!(this.entries[i] as Deadline).done) n++;
    return n;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.held = false;
    const now = Date.now();
    // Take the due entries out first, fire them after: a fired callback settles its call, which calls
    // `remove` and may reset the array under a loop still walking it.
    const due: Deadline[] = [];
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head] as Deadline;
      if (!entry.done) {
        if (entry.at > now) break;
        entry.done = true;
        due.push(entry);
      }
      this.entries[this.head++] = PASSED;
    }
    this.trim();
    const next = this.entries[this.head];
    if (next !== undefined) this.arm(next.at);
    for (const entry of due) entry.fire();
  };

  /** Drops settled entries from the head, and compacts the array once the dead prefix dominates it. */
  private trim(): void {
    const entries = this.entries;
    while (this.head < entries.length && (entries[this.head] as Deadline).done) this.head++;
    if (this.head === entries.length) {
      this.offset += entries.length;
      entries.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > entries.length) {
      this.offset += this.head;
      this.entries = entries.slice(this.head);
      this.head = 0;
    }
  }

  private arm(at: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(0, at - Date.now()));
    this.held = true;
  }
}
