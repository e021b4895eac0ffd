import type { CqrsError } from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';
import { abandoned, timedOut } from './clientErrors.js';
import type { RemoteCall, SentBatch } from './RemoteCall.js';

/**
 * The calls of a {@link RemoteClient} not settled yet, where each waits for its reply (alone under its
 * token, or in a batch), and their deadlines. Every call waits the same `timeoutMs`, so deadlines fall due
 * in the order the calls were made, which is the order of the table: one timer, armed for the oldest, does
 * for all (a Node timer per call costs more than the rest of a batched call's bookkeeping). When the table
 * empties the timer is unref'd rather than cleared — calls one after another would otherwise arm and
 * clear one each — and fires once, idle.
 * @internal
 */
export class CallTable {
  private readonly calls = new Set<RemoteCall>();
  private readonly singles = new Map<string, RemoteCall>();
  private readonly batches = new Map<string, SentBatch>();
  private timer: NodeJS.Timeout | undefined;
  /** Whether the timer keeps the process alive (only while calls wait). */
  private timerHeld = false;

  constructor(private readonly timeoutMs: number) {}

  /** Calls not settled (held for a batch included). */
  get size(): number {
    return this.calls.size;
  }

  /** Every call not settled, oldest first (a copy). */
  all(): RemoteCall[] {
    return [...this.calls];
  }

  add(call: RemoteCall): void {
    this.calls.add(call);
    this.watch(call);
  }

  /** `call` was sent alone, its reply to come under `token`. */
  sentAlone(call: RemoteCall, token: string): void {
    call.token = token;
    this.singles.set(token, call);
    if (call.lane !== undefined) call.lane.out++;
  }

  /** `batch` was sent; its calls' replies come under its token. */
  sentInBatch(batch: SentBatch): void {
    this.batches.set(batch.token, batch);
    batch.lane.batchesOut++;
    batch.lane.out += batch.calls.length;
    batch.calls.forEach((call, i) => {
      call.batch = batch;
      call.index = i;
    });
  }

  single(token: string): RemoteCall | undefined {
    return this.singles.get(token);
  }

  batch(token: string): SentBatch | undefined {
    return this.batches.get(token);
  }

  /** The calls of `batch` not settled yet (a copy: settling them changes nothing it walks). */
  open(batch: SentBatch): RemoteCall[] {
    return batch.calls.filter((call) => !call.settled && call.batch === batch);
  }

  /** Takes a call out of its batch, to be sent again alone. */
  detach(call: RemoteCall): void {
    const batch = call.batch;
    if (batch === undefined) return;
    call.batch = undefined;
    this.leave(batch);
  }

  /** Settles (`ABORTED`) the calls of `remote()` whose caller gave up: they hold no slot any more. */
  sweepCancelled(): void {
    // Deleting the entry being visited is safe for a Set's iterator.
    for (const call of this.calls) this.dropIfCancelled(call);
  }

  /** Settles `call` with `ABORTED` when its caller gave up; says whether it did. */
  dropIfCancelled(call: RemoteCall): boolean {
    if (call.ctx === undefined || !call.ctx.isCancelled()) return false;
    this.settle(call, undefined, abandoned(call.name));
    return true;
  }

  /** Ends one call once: out of the tables, its abort listener removed, its promise settled. */
  settle(call: RemoteCall, value: unknown, err: CqrsError | undefined): void {
    if (call.settled) return;
    call.settled = true;
    this.calls.delete(call);
    if (this.calls.size === 0 && this.timer !== undefined && this.timerHeld) {
      this.timer.unref();
      this.timerHeld = false;
    }
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    if (call.token !== undefined) {
      this.singles.delete(call.token);
      if (call.lane !== undefined) call.lane.out--;
    } else if (call.batch !== undefined) {
      this.leave(call.batch);
    }
    // Otherwise it was still held in its lane, which skips settled calls.
    if (err === undefined) call.resolve(value);
    else call.reject(markForwarded(err));
  }

  /** One call of `batch` is done with it. */
  private leave(batch: SentBatch): void {
    batch.lane.out--;
    if (--batch.open === 0) {
      this.batches.delete(batch.token);
      batch.lane.batchesOut--;
    }
  }

  /** Arms the timer for `call`'s deadline, unless it is armed for an earlier one (deadlines only grow). */
  private watch(call: RemoteCall): void {
    if (this.timer === undefined) {
      this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(call.deadline - performance.now())));
      this.timerHeld = true;
    } else if (!this.timerHeld) {
      this.timer.ref();
      this.timerHeld = true;
    }
  }

  /** Ends the calls whose deadline passed (the oldest first), and arms the timer for the next. */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    const now = performance.now();
    const due: RemoteCall[] = [];
    for (const call of this.calls) {
      if (call.deadline > now) break;
      due.push(call);
    }
    for (const call of due) this.settle(call, undefined, timedOut(call.name, this.timeoutMs));
    const next = this.calls.values().next();
    if (next.done !== true) this.watch(next.value);
  };
}
