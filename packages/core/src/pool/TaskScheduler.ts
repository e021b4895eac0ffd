import type { Piscina } from 'piscina';
import { CqrsError } from '../errors/CqrsError.js';
import { serializeError } from '../errors/serialize.js';
import type { CallBoard } from '../shared/CallBoard.js';
import { encodeBatch, outcomeAt, sentEarly } from './batchCodec.js';
import type { KillSwitch } from './KillSwitch.js';
import type { BatchOutcome, EarlyOutcomes, TaskMessage, TaskOutcome } from './protocol.js';
import { SLOW_CALL_MS } from './protocol.js';

/** `WorkerPool`'s `batching` option, resolved. */
export interface BatchLimits {
  /** Most tasks in one message. */
  readonly maxSize: number;
  /** Rough bound on how long the last task of a batch waits for the ones before it, in ms. */
  readonly maxDelayMs: number;
}

/** What a {@link TaskScheduler} is told of its pool. */
export interface SchedulerOptions {
  /** Messages the threads take at once: threads × tasks per thread. */
  readonly capacity: number;
  /** Micro-batching; undefined: every call is posted alone. */
  readonly batching: BatchLimits | undefined;
  /** True while a task's handler has not started (its cancel word says so). */
  readonly notStarted: (message: TaskMessage) => boolean;
  /**
   * Keeps the process alive (true) while early outcomes are due after their batch answered, or lets it exit
   * again (false): see ThreadLinks.hold.
   */
  readonly keepAlive?: (on: boolean) => void;
  /** Where waiting calls are pinned for the first thread free; undefined to post every call to piscina. */
  readonly board?: CallBoard | undefined;
  /** True once a thread's handler finished the task (its outcome was posted, or is about to be). */
  readonly finished?: (message: TaskMessage) => boolean;
  /** True while a dead thread's run port still has messages to deliver (see ThreadLinks.gone). */
  readonly draining?: () => boolean;
  /** The outcome a dead thread left in shared memory for a task it finished (HeldOutcomes), if it did. */
  readonly leftBehind?: (message: TaskMessage) => TaskOutcome | undefined;
}

/**
 * Where a call's outcome goes: told once, by the scheduler, when the call's outcome came (or it was dropped
 * while it waited: `droppedOutcome`), or with the error of its message when that never came back. An object
 * with methods, not a promise's settlers: a pooled call keeps all its state in one object (PooledCall).
 */
export interface OutcomeSink {
  settle(outcome: TaskOutcome): void;
  fail(err: unknown): void;
  /** True once its caller gave up: a call whose thread went away before it started is then not sent again. */
  readonly cancelled: boolean;
}

/** A call handed to the scheduler, for `drop`. */
export type ScheduledCall = Entry;

interface Entry {
  readonly message: TaskMessage;
  /**
   * Set for a call that can be cancelled: its abort drops it while it waits here. A stream's travels alone,
   * and piscina terminates its thread through it; any other such call travels like the rest, in batches and
   * on the board (the pool terminates the thread that runs it past its grace period, see WorkerPool).
   */
  readonly kill: KillSwitch | undefined;
  /** `kill` of a stream that can be cancelled: it travels alone, is never pinned, and piscina gets it. */
  readonly piscinaKill: KillSwitch | undefined;
  readonly sink: OutcomeSink;
  /** Travels alone (a cancellable stream, or retried alone after its batch failed to arrive). */
  solo: boolean;
  /** Aborted while it waited here: skipped. */
  dropped: boolean;
  /** Taken from the queue to be posted or pinned: an abort only sets its cancel flag now (see WorkerPool.run). */
  left: boolean;
  /** Sent again once already, after its thread was gone before it started. */
  retried: boolean;
  /** It settles by its early outcome alone: its message's answer came first, or it is pinned (see `resolveEarly`). */
  answered: boolean;
  /** Its message did not fit on the board (CallBoard.pin): it goes the usual way. */
  pinless: boolean;
}

const droppedOutcome: TaskOutcome = {
  ok: false,
  k: 'cancelled',
  e: serializeError(new CqrsError('ABORTED', 'cancelled while it waited for a thread')),
};

/**
 * Hands tasks to piscina no faster than its threads take them, and sends the tasks that had to wait as
 * batches: one message carries many calls, so the per-message cost (structured clone, a port round trip,
 * waking a thread) is paid once per batch instead of once per call.
 *
 * Why not leave the waiting to piscina's queue: piscina posts one message per task, and at a few µs of call
 * work that message is most of the cost (measured: ~38k tasks/s on two threads for an echo, while one task
 * carrying many items moves several times that). Waiting here instead, the tasks that pile up while every
 * thread is busy leave together when a thread frees: a busy pool sends big batches, an idle one sends each
 * call at once, alone, exactly as piscina would (so a lone call pays no batching delay).
 *
 * A batch's size is the smallest of `maxSize`, an even share of what waits (`waiting / capacity`, so the
 * threads finish the backlog together instead of one holding a big last batch while the other idles), and
 * as many tasks as fit in `maxDelayMs` at the recent per-task time (so slow handlers go in small batches:
 * the last of a batch waits for the ones before it on the same thread).
 *
 * A call that can be cancelled travels like the others, in batches and on the board: past its grace period
 * the pool terminates the thread running it (WorkerPool.terminateRunner), and no batch-mate's result goes
 * down with it — the thread copies the outcomes it holds to shared memory before it starts such a call (the
 * pool reads them there once the thread is gone), and the calls it had
 * not started run again. A cancellable stream travels alone, and piscina terminates its thread. When a batch
 * never arrives (a thread died under it, or an input could not be cloned), the tasks that never started are
 * sent again, each alone, so only the call at fault fails; and a single call whose thread went away before it started (a thread retiring, see
 * PoolWorkerData.guard) is sent again once.
 *
 * With a CallBoard (CallBoard.ts), the calls that wait while every thread is busy are also pinned there, a
 * message (one call, or a batch) per entry, and the first thread to finish its call takes the oldest at
 * once: its outcomes come back early (on the run port), and the thread answers its piscina message only when
 * the board has nothing left. A thread that goes idle anyway (it looked at the board just before a call was
 * pinned) makes the pool take back what no thread took and post it the usual way. A cancellable stream (or
 * a probe) is never pinned, and pinning stops behind one, so it gets the next thread that frees.
 * @internal
 */
export class TaskScheduler {
  private readonly queue: Entry[] = [];
  private head = 0;
  /** Entries in `queue` from `head` on that were not dropped. */
  private live = 0;
  /** piscina tasks (single or batch) posted and not answered. */
  private posted = 0;
  /**
   * Recent time per task of a posted message, in ms (exponentially weighted), from post to answer: the
   * estimate of a call's time without a board (with one, the threads' own figure is fresher).
   */
  private perTaskMs = 0;
  /** Entries of batches in flight, by cancel slot, until their outcome arrives (early or with the batch). */
  private readonly inBatch = new Map<number, Entry>();
  /** Entries whose batch has answered, or that were pinned on the board, while their early outcome is still on its way. */
  private awaitingEarly = 0;
  /** Batch messages posted or taken from the board, and the calls they carried. */
  batches = 0;
  batchedCalls = 0;
  /** Messages pinned on the board that a thread took (not taken back). */
  boardMessages = 0;
  /** Per board entry, the calls the main thread pinned there last, and when (the pin order). */
  private readonly pinnedCalls: (Entry[] | undefined)[] = [];
  private readonly pinOrder: number[] = [];
  private pins = 0;
  /** A pin is due at the end of this turn of the event loop (see `pinSoon`). */
  private pinDue = false;
  private readonly pinNow = (): void => {
    this.pinDue = false;
    if (this.posted < this.capacity) this.reclaim();
    this.postWaiting();
    if (this.live > 0) this.pinWaiting();
  };

  private readonly capacity: number;
  private readonly limits: BatchLimits | undefined;
  private readonly notStarted: (message: TaskMessage) => boolean;
  private readonly keepAlive: (on: boolean) => void;
  private readonly board: CallBoard | undefined;
  private readonly finished: (message: TaskMessage) => boolean;
  private readonly draining: () => boolean;
  private readonly leftBehind: (message: TaskMessage) => TaskOutcome | undefined;

  constructor(
    private readonly piscina: Piscina,
    options: SchedulerOptions,
  ) {
    this.capacity = options.capacity;
    this.limits = options.batching;
    this.notStarted = options.notStarted;
    this.keepAlive = options.keepAlive ?? (() => {});
    this.board = options.board;
    this.finished = options.finished ?? (() => false);
    this.draining = options.draining ?? (() => false);
    this.leftBehind = options.leftBehind ?? (() => undefined);
  }

  /**
   * Calls whose handler finished on a thread that then died (running a later call from the board), with the
   * error piscina gave their message: their outcome went early, on the run port, and may still be on its
   * way. They settle by it, or fail with that error once no dead thread's port has anything left.
   */
  private readonly orphans: { entry: Entry; err: unknown }[] = [];

  /** Tasks waiting for a thread: here, or pinned on the board and not taken yet. */
  get waiting(): number {
    const board = this.board;
    if (board === undefined || !board.pinned) return this.live;
    let pinned = 0;
    for (let e = 0; e < this.pinnedCalls.length; e++) {
      const calls = this.pinnedCalls[e];
      if (calls !== undefined && board.isReady(e)) pinned += calls.length;
    }
    return this.live + pinned;
  }

  /** True when a new task would have to wait (every thread holds as many messages as it takes). */
  get saturated(): boolean {
    return this.posted >= this.capacity;
  }

  /**
   * Runs `message` in a thread; `kill` (cancellable calls) drops it while it waits here, and terminates the
   * thread running a cancellable stream.
   */
  submit(message: TaskMessage, kill: KillSwitch | undefined): Promise<TaskOutcome> {
    return new Promise<TaskOutcome>((resolve, reject) => {
      this.enqueue(message, new PromiseSink(resolve, reject, kill), kill);
    });
  }

  /**
   * Runs `message` in a thread and tells `sink` its outcome. `kill`: as for `submit`; a call that can be
   * cancelled without one is dropped while it waits by `drop`.
   */
  enqueue(message: TaskMessage, sink: OutcomeSink, kill?: KillSwitch): ScheduledCall {
    const piscinaKill = message.st === 1 ? kill : undefined;
    const entry: Entry = {
      message,
      kill,
      piscinaKill,
      sink,
      // A probe (`ready()`) owns no cancel slot, which a failed batch's retry reads.
      solo: piscinaKill !== undefined || this.limits === undefined || message.probe === true,
      dropped: false,
      left: false,
      retried: false,
      answered: false,
      pinless: false,
    };
    if (this.posted < this.capacity && this.waiting === 0) {
      this.postOne(entry);
      return entry;
    }
    this.queue.push(entry);
    this.live++;
    this.watch(entry);
    if (this.board !== undefined) this.pinSoon();
    return entry;
  }

  /**
   * The call's caller gave up: while it still waits here it is dropped, settled with `droppedOutcome`; once
   * it left (posted or pinned) nothing changes here (its thread skips it: its cancel flag says cancelled).
   */
  drop(call: ScheduledCall): void {
    if (call.dropped || call.left) return;
    call.dropped = true;
    this.live--;
    call.sink.settle(droppedOutcome);
  }

  /** A waiting entry with a `kill`: its abort drops it from the queue. */
  private watch(entry: Entry): void {
    const kill = entry.kill;
    if (kill !== undefined) kill.once('abort', () => this.drop(entry));
  }

  /** Posts waiting tasks while threads have room; the rest are pinned on the board soon (`pinSoon`). */
  private flush(): void {
    if (this.board === undefined) {
      this.postWaiting();
      return;
    }
    if (this.posted < this.capacity) this.reclaim();
    this.postWaiting();
    if (this.live > 0) this.pinSoon();
  }

  /**
   * Pins what waits at the end of this turn of the event loop, once: by then the callers whose results just
   * came have made their next calls, so a backlog is pinned in full batches, not in the scraps there when
   * the first result came (measured: echo calls at 1000 in flight went 15 to a message instead of 60, at
   * ~20 % less throughput and twice the p99).
   */
  private pinSoon(): void {
    if (this.pinDue) return;
    this.pinDue = true;
    setImmediate(this.pinNow);
  }

  private postWaiting(): void {
    while (this.posted < this.capacity) {
      const first = this.take();
      if (first === undefined) return;
      if (first.solo) {
        this.postOne(first);
        continue;
      }
      const batch = this.batchFor(first);
      if (batch.length === 1) this.postOne(first);
      else this.postBatch(batch);
    }
  }

  /**
   * `first` and the waiting tasks that go with it in one message. With the board, calls of `SLOW_CALL_MS` or
   * more (the threads' recent time per call, CallBoard.recordCallTime) go one per message unless a deep
   * backlog waits (then a batch gathers its outcomes, see holdFor):
   * sharing a message saves them little, since no thread waits for a round trip between calls, and a
   * batch-mate would wait behind them while another thread may be free (measured: the closed loop's p99).
   */
  private batchFor(first: Entry): Entry[] {
    if (first.solo) return [first];
    const size = this.batchSize();
    const board = this.board;
    if (board !== undefined && board.recentCallMicros >= SLOW_CALL_MS * 1000 && this.holdFor(size) === 0) {
      return [first];
    }
    const batch = [first];
    while (batch.length < size) {
      const next = this.queue[this.head];
      if (next === undefined || next.solo) break;
      this.head++;
      if (!next.dropped) {
        this.live--;
        // Left with its batch: an abort now only sets its cancel flag (its thread skips it), as for `take`.
        next.left = true;
        batch.push(next);
      }
    }
    this.compact();
    return batch;
  }

  /**
   * Pins waiting calls on the board while it has a free entry, oldest first: one call, or a batch as it
   * would be posted. Stops at a cancellable stream (it waits for a thread of its own) and at a message that
   * does not fit an entry (it goes the usual way).
   */
  private pinWaiting(): void {
    const board = this.board as CallBoard;
    while (this.live > 0) {
      const head = this.peek();
      if (head === undefined || head.pinless || head.piscinaKill !== undefined || head.message.probe === true)
        return;
      const e = board.freeEntry();
      if (e < 0) return;
      const first = this.take() as Entry;
      const batch = this.batchFor(first);
      const message =
        batch.length === 1
          ? first.message
          : encodeBatch(
              batch.map((entry) => entry.message),
              this.holdFor(batch.length),
            );
      if (!board.pin(e, message)) {
        first.pinless = true;
        this.requeueFront(batch);
        return;
      }
      if (batch.length > 1) {
        this.batches++;
        this.batchedCalls += batch.length;
      }
      for (const entry of batch) this.expectEarly(entry);
      this.boardMessages++;
      this.pinnedCalls[e] = batch;
      this.pinOrder[e] = this.pins++;
    }
  }

  /** A thread went idle: the calls still pinned go back to the front of the queue, in their order. */
  private reclaim(): void {
    const board = this.board as CallBoard;
    if (!board.pinned) return;
    const back: { order: number; calls: Entry[] }[] = [];
    for (let e = 0; e < this.pinnedCalls.length; e++) {
      const calls = this.pinnedCalls[e];
      if (calls === undefined || !board.reclaim(e)) continue;
      this.pinnedCalls[e] = undefined;
      this.boardMessages--;
      if (calls.length > 1) {
        this.batches--;
        this.batchedCalls -= calls.length;
      }
      for (const entry of calls) this.forgetEarly(entry);
      back.push({ order: this.pinOrder[e] as number, calls });
    }
    back.sort((a, b) => a.order - b.order);
    this.requeueFront(back.flatMap((pinned) => pinned.calls));
  }

  /**
   * Thread `threadId` is gone, its run port read to the end: the calls it took from the board and never
   * answered run again if they never started (alone, at the front), and fail if they did.
   */
  threadGone(threadId: number): void {
    this.settleOrphans();
    const board = this.board;
    if (board === undefined) return;
    const again: Entry[] = [];
    for (let e = 0; e < this.pinnedCalls.length; e++) {
      const calls = this.pinnedCalls[e];
      if (calls === undefined || !board.takenBy(e, threadId)) continue;
      this.pinnedCalls[e] = undefined;
      board.release(e);
      for (const entry of calls) {
        if (this.inBatch.get(entry.message.c) !== entry) continue;
        this.forgetEarly(entry);
        // Posted alone from now on: one that kills its thread before it starts is then retried once only.
        if (this.notStarted(entry.message)) {
          entry.solo = true;
          entry.pinless = true;
          again.push(entry);
        } else entry.sink.fail(new Error(`pool thread ${threadId} exited while running the call`));
      }
    }
    this.requeueFront(again);
    this.flush();
  }

  /**
   * Settles a finished entry of a thread that died by the outcome the thread left in shared memory, if it
   * left one (it was held when the thread was terminated over a later call): true when it did. Read now,
   * not when the thread's run port is read to its end, which may come later.
   */
  private settleLeftBehind(entry: Entry): boolean {
    const outcome = this.leftBehind(entry.message);
    if (outcome === undefined) return false;
    this.forgetEarly(entry);
    entry.sink.settle(outcome);
    return true;
  }

  /** Fails the orphans whose outcome never came, once no dead thread's port can still deliver it. */
  private settleOrphans(): void {
    if (this.orphans.length === 0 || this.draining()) return;
    for (const { entry, err } of this.orphans.splice(0)) {
      if (this.inBatch.get(entry.message.c) !== entry) continue;
      this.inBatch.delete(entry.message.c);
      entry.sink.fail(err);
    }
  }

  /** The next live waiting entry, left in the queue, or undefined. */
  private peek(): Entry | undefined {
    for (let i = this.head; i < this.queue.length; i++) {
      const entry = this.queue[i] as Entry;
      if (!entry.dropped) return entry;
    }
    return undefined;
  }

  /** The next live waiting entry, or undefined. */
  private take(): Entry | undefined {
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head++] as Entry;
      if (entry.dropped) continue;
      this.live--;
      entry.left = true;
      // An entry with a `kill` keeps its waiting-abort listener (it does nothing once `left`) until piscina,
      // on `run` of a cancellable stream, puts its own in its place (a KillSwitch holds one listener).
      this.compact();
      return entry;
    }
    this.compact();
    return undefined;
  }

  /** Drops consumed entries from the front once they are most of the array. */
  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private batchSize(): number {
    const limits = this.limits as BatchLimits;
    const share = Math.ceil((this.waiting + 1) / this.capacity);
    const perTaskMs = this.perTaskEstimate();
    const inTime = perTaskMs > 0 ? Math.floor(limits.maxDelayMs / perTaskMs) : limits.maxSize;
    return Math.max(1, Math.min(limits.maxSize, share, inTime));
  }

  /**
   * How long a batch of `size` may hold its finished calls' outcomes (0: not at all, each goes back as its
   * handler ends). An outcome sent on its own costs a message and a wake-up of the main thread, which on
   * a machine with as many threads as cores takes CPU from the threads: at ~1 ms calls, one message per call
   * cost 5–8 % of the throughput of a backlog (cpuScaling). It buys nothing while calls still wait here for
   * a whole batch per thread: the threads have their next work either way, so a caller's next call would
   * only join the backlog. Then outcomes wait up to half the batch's time budget and leave together;
   * otherwise (a service's few calls in flight per thread) each goes back at once.
   */
  private holdFor(size: number): number {
    const limits = this.limits as BatchLimits;
    return this.waiting >= this.capacity * size ? limits.maxDelayMs / 2 : 0;
  }

  /**
   * A call's recent time, in ms (0: none yet). With a board, the threads' own moving average of their calls
   * (CallBoard.recordCallTime), updated by every call: a thread serving the board answers its piscina message
   * only once the board is empty, so in a backlog `perTaskMs` can go unchanged from before it.
   */
  private perTaskEstimate(): number {
    const recentMicros = this.board?.recentCallMicros ?? 0;
    return recentMicros > 0 ? recentMicros / 1000 : this.perTaskMs;
  }

  /** A posted message of `tasks` calls was answered: `started` is when it was posted. */
  private measured(started: number, tasks: number): void {
    const perTask = (performance.now() - started) / tasks;
    this.perTaskMs = this.perTaskMs === 0 ? perTask : this.perTaskMs * 0.8 + perTask * 0.2;
  }

  private postOne(entry: Entry): void {
    this.posted++;
    const started = performance.now();
    // A thread may go on to calls from the board after this one: its outcome then comes early.
    const mayComeEarly =
      this.board !== undefined && entry.piscinaKill === undefined && entry.message.probe !== true;
    if (mayComeEarly) this.inBatch.set(entry.message.c, entry);
    // A probe's time is its thread's start and the module's load, a stream's its consumer's pace: neither
    // says how long a call takes.
    const timed = entry.message.probe !== true && entry.message.st !== 1;
    this.piscina
      .run(entry.message, entry.piscinaKill === undefined ? undefined : { signal: entry.piscinaKill })
      .then(
        (answer: TaskOutcome | BatchOutcome) => {
          this.posted--;
          if ('f' in answer) {
            this.measured(started, 1 + (answer.b ?? 0));
            this.flush();
            this.awaitEarly(entry);
            return;
          }
          if (timed) this.measured(started, 1);
          if (mayComeEarly) this.inBatch.delete(entry.message.c);
          this.flush();
          entry.sink.settle(answer);
        },
        (err: unknown) => {
          this.posted--;
          // Its outcome came early, before its thread went away, or is still on its way.
          if (mayComeEarly && this.inBatch.get(entry.message.c) !== entry) {
            this.flush();
            return;
          }
          if (mayComeEarly && this.finished(entry.message)) {
            if (this.settleLeftBehind(entry)) {
              this.flush();
              return;
            }
            this.orphans.push({ entry, err });
            this.settleOrphans();
            this.flush();
            return;
          }
          if (mayComeEarly) this.inBatch.delete(entry.message.c);
          // Its thread went away before the call started (a thread retiring, see PoolWorkerData.guard, or
          // dying under an earlier task): sent again, once, at the front. A call aborted meanwhile is not.
          const again =
            !entry.retried &&
            !entry.sink.cancelled &&
            entry.message.probe !== true &&
            this.notStarted(entry.message);
          if (again) {
            entry.retried = true;
            this.requeueFront([entry]);
            this.watch(entry);
          }
          this.flush();
          if (!again) entry.sink.fail(err);
        },
      );
  }

  private postBatch(batch: Entry[]): void {
    this.posted++;
    this.batches++;
    this.batchedCalls += batch.length;
    const started = performance.now();
    for (const entry of batch) this.inBatch.set(entry.message.c, entry);
    this.piscina
      .run(
        encodeBatch(
          batch.map((entry) => entry.message),
          this.holdFor(batch.length),
        ),
      )
      .then(
        (answer: BatchOutcome) => {
          this.posted--;
          this.measured(started, batch.length + (answer.b ?? 0));
          this.flush();
          for (let i = 0; i < batch.length; i++) {
            const entry = batch[i] as Entry;
            // One sent early is settled by its early message, which may yet be on its way (another port).
            if (sentEarly(answer, i)) {
              this.awaitEarly(entry);
              continue;
            }
            this.inBatch.delete(entry.message.c);
            entry.sink.settle(outcomeAt(answer, i));
          }
        },
        (err: unknown) => {
          this.posted--;
          // Tasks that never started are sent again, alone, at the front of the queue (in their order): the
          // one whose input cannot be cloned, or that kills its thread, then fails by itself.
          // A finished one's outcome went early, and may still be on its way from its dead thread.
          const again: Entry[] = [];
          for (const entry of batch) {
            if (this.inBatch.get(entry.message.c) !== entry) continue;
            if (this.finished(entry.message)) {
              if (!this.settleLeftBehind(entry)) this.orphans.push({ entry, err });
              continue;
            }
            this.inBatch.delete(entry.message.c);
            if (this.notStarted(entry.message)) {
              entry.solo = true;
              again.push(entry);
            } else entry.sink.fail(err);
          }
          this.requeueFront(again);
          this.settleOrphans();
          this.flush();
        },
      );
  }

  /**
   * The piscina answer of `entry`'s message says its outcome went early: until that arrives (another port),
   * the process is kept alive. Nothing to do when it arrived first.
   */
  private awaitEarly(entry: Entry): void {
    if (this.inBatch.get(entry.message.c) === entry) this.expectEarly(entry);
  }

  /** `entry` settles by an early outcome alone (it was pinned on the board, or its answer came). */
  private expectEarly(entry: Entry): void {
    this.inBatch.set(entry.message.c, entry);
    if (entry.answered) return;
    entry.answered = true;
    if (this.awaitingEarly++ === 0) this.keepAlive(true);
  }

  /** `entry` no longer waits for an early outcome (taken back from the board, or its thread died). */
  private forgetEarly(entry: Entry): void {
    this.inBatch.delete(entry.message.c);
    if (!entry.answered) return;
    entry.answered = false;
    if (--this.awaitingEarly === 0) this.keepAlive(false);
  }

  /** Outcomes a thread sent before its batch ended: their calls settle now. */
  resolveEarly(early: EarlyOutcomes): void {
    for (let i = 0; i < early.c.length; i++) {
      const entry = this.inBatch.get(early.c[i] as number);
      // The generation tells this task from a later one in the same slot.
      if (entry === undefined || entry.message.g !== early.g[i]) continue;
      this.forgetEarly(entry);
      entry.sink.settle(outcomeAt(early.o, i));
    }
    // A thread freed a board entry, or is about to: more waiting calls may go there.
    if (this.board !== undefined && this.live > 0) this.pinSoon();
  }

  private requeueFront(entries: Entry[]): void {
    if (entries.length === 0) return;
    this.live += entries.length;
    // Waiting again: an abort drops them from the queue.
    for (const entry of entries) entry.left = false;
    if (this.head >= entries.length) {
      this.head -= entries.length;
      for (let i = 0; i < entries.length; i++) this.queue[this.head + i] = entries[i] as Entry;
    } else {
      this.queue.splice(0, this.head, ...entries);
      this.head = 0;
    }
  }
}

/** The sink of a `submit`: the promise it returned. */
class PromiseSink implements OutcomeSink {
  constructor(
    readonly settle: (outcome: TaskOutcome) => void,
    readonly fail: (err: unknown) => void,
    private readonly kill: KillSwitch | undefined,
  ) {}

  get cancelled(): boolean {
    return this.kill?.aborted === true;
  }
}
