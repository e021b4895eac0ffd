/** A count of free slots; `acquire` waits (FIFO) when there is none. @internal */
export class Semaphore {
  private readonly waiting: (() => void)[] = [];
  private head = 0;

  constructor(private free: number) {}

  /** Takes a slot: undefined when one was free (no promise, no tick), else a promise resolved at its turn. */
  acquire(): Promise<void> | undefined {
    if (this.free > 0) {
      this.free--;
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives a slot back, to the longest waiter if any. */
  release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head] as () => void;
      this.waiting[this.head++] = undefined as unknown as () => void;
      if (this.head === this.waiting.length) {
        this.waiting.length = 0;
        this.head = 0;
      }
      next();
      return;
    }
    this.free++;
  }
}
