import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { OrderingTable } from '../bus/OrderingTable.js';
import type { StreamSink } from '../bus/StreamSink.js';
import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import { deserializeError } from '../errors/serialize.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { MessageKind } from '../messages/Definition.js';
import type { CallTicket } from '../middleware/Middleware.js';
import { BusyTime, nowMicros } from '../shared/BusyTime.js';
import { CallBoard } from '../shared/CallBoard.js';
import { CancelFlags, DONE, FAILED, STARTED } from '../shared/CancelFlags.js';
import { HeldOutcomes } from '../shared/HeldOutcomes.js';
import { MetricsRegion } from '../shared/MetricsRegion.js';
import { ModuleTable } from '../shared/ModuleTable.js';
import { StreamCredits } from '../shared/StreamCredits.js';
import { abortErrorFor } from '../util/abortError.js';
import type { CancelToken } from '../util/CancelToken.js';
import { abortReason, canAbort, isAborted, listenAbort } from '../util/callAbort.js';
import { safeString } from '../util/safeString.js';
import { settleInto } from '../util/settleInto.js';
import { BusDirectory, DEFAULT_MAX_NESTING_DEPTH } from './BusDirectory.js';
import { outcomeAt } from './batchCodec.js';
import { moduleHref } from './inWorker.js';
import type { KillSwitch } from './KillSwitch.js';
import type { PoolSide } from './PooledCall.js';
import { PooledCall } from './PooledCall.js';
import type {
  HelloMessage,
  LoggerFailedMessage,
  PoolWorkerData,
  TaskMessage,
  TaskOutcome,
  ThreadErrorMessage,
} from './protocol.js';
import { HELLO, LOGGER_FAILED, THREAD_ERROR } from './protocol.js';
import { fromResultColumns, type ResultColumns } from './resultColumns.js';
import { StreamRunner } from './StreamRunner.js';
import type { BatchLimits } from './TaskScheduler.js';
import { TaskScheduler } from './TaskScheduler.js';
import { ThreadLinks } from './ThreadLinks.js';
import { UtilizationWindow } from './UtilizationWindow.js';
import { DEFAULT_MAX_DEPTH, exceedsDepth } from './valueDepth.js';

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Most threads; default `os.availableParallelism()`. */
  threads?: number;
  /** Threads kept alive when idle; default `threads` (a fixed-size pool). */
  minThreads?: number;
  /** Calls that may wait for a thread; one more is refused at once with `OVERLOADED`. Default 10 000; 0 queues nothing. */
  maxQueue?: number;
  /** An idle thread above `minThreads` exits after this long; default 60 000 ms. */
  idleTimeoutMs?: number;
  /** V8 heap and stack limits of each thread; a thread that exceeds them dies (`WORKER_CRASHED`) and is replaced. */
  resourceLimits?: ResourceLimits;
  /** How long a cancelled worker handler may go on before its thread is terminated and replaced; default 1000 ms. */
  cancelGraceMs?: number;
  /** Tasks one thread may hold at once (for handlers that mostly await I/O); default 1. */
  concurrentTasksPerThread?: number;
  /**
   * Called with an error that killed a thread outside any task (the thread is replaced either way), and
   * once (the first thread to fail) when `threadLogger` cannot be loaded.
   */
  onThreadError?: (err: unknown) => void;
  /**
   * The base of worker handlers' `ctx.logger`: each thread imports `module` (a `URL`, a `file:` URL string or
   * an absolute path) once, at start, and uses its export `export` (default `'logger'`), a pino-style logger;
   * a call's `ctx.logger` is its child with `{ handler, kind, correlationId? }` bound. Default: a no-op
   * logger. A module that cannot be loaded (or whose export is no logger) does not stop the calls: their
   * `ctx.logger` is then a no-op and `onThreadError` is told once, with an `INVALID_REGISTRATION` error.
   */
  threadLogger?: { module: URL | string; export?: string };
  /**
   * Micro-batching: calls that wait for a thread (every thread busy) leave together, many in one message,
   * when a thread frees — a busy pool then pays the per-message cost once per batch instead of once per call.
   * An idle pool sends each call at once, alone. A call that can be cancelled (a signal, or `timeout()`)
   * travels in batches too: its thread copies the outcomes it holds to shared memory before starting it, so a thread
   * terminated over it loses none. `maxSize`: most calls in one message (default 64); `maxDelayMs`: rough
   * bound on a batch's run time, from the recent time per call (default 16) — the calls of a batch get their results
   * together when it ends, so this is what batching can add to a call's latency; the batches also shrink to
   * an even share of the queue, so a short queue leaves in small ones. `false` sends every call alone.
   * Default on. (Measured, 1 ms CPU handlers on 2 threads: efficiency against bare threads 89 % with a
   * 2 ms bound, 94 % with 8 ms, 96 % with 16 ms — each batch saves a round trip per call.)
   */
  batching?: boolean | { maxSize?: number; maxDelayMs?: number };
  /**
   * The board of waiting calls: while every thread is busy, calls that wait are pinned in shared memory
   * (up to 4 messages per thread, 16 KiB each), and a thread that finishes its call takes the oldest at once
   * instead of answering and sleeping until the main thread's next message reaches it — the round trip a
   * closed loop of callers otherwise pays per call. The first thread free takes it, so no call waits behind
   * a busy thread. Inputs that cannot be serialized there (a SharedArrayBuffer, a value over 16 KiB), and
   * streams that can be cancelled, are posted as before. Default true; off with
   * `concurrentTasksPerThread` above 1. `false` posts every call.
   */
  board?: boolean;
  /**
   * How an idle thread waits for its next call. `'block'` (default, piscina's own default): in a blocking
   * `Atomics.wait`, the quickest to wake; its event loop does not run meanwhile, so timers and I/O a handler
   * module keeps going between calls (keep-alives, background refreshes) wait for the next call. An error
   * such a leftover throws during a later call does not fail that call: the thread reports it to
   * `onThreadError` and is replaced before its next call, which runs elsewhere. `'loop'`: on its event loop
   * (`Atomics.waitAsync`), so background work runs on time and a leftover's error kills the thread at once,
   * between calls; a lone call's round trip is a few µs slower (measured: 78 vs 74 µs medians, 1 in flight).
   */
  idleWait?: 'block' | 'loop';
  /**
   * How much lower than the main thread's the pool threads' CPU priority is: each thread adds this to its
   * nice value when it starts (`nice(2)`, through piscina's option of the same name and its optional
   * `@napi-rs/nice`). Integer 0–19; default 0 (the main thread's priority, as piscina's default). Above 0,
   * when the threads keep every core busy the main thread gets a core as soon as it has work — a request to
   * route, a health check — instead of at the end of a thread's time slice; but the threads then also wait
   * behind every other busy thread or process of their scheduling group, so their own wake-ups come later.
   * Measured on 2 cores: an HTTP service's `/health` p99 under load 6.2–6.4 ms at 10 against 8.2–11.7 ms at
   * 0, the same requests per second; calls served over NATS with the NATS server on the same cores, a
   * median 16 % fewer per second at 10. On Linux the priority is the thread's own; where a platform only
   * has a process-wide nice value, or `@napi-rs/nice` is not installed, the threads keep the process's.
   */
  niceIncrement?: number;
  /**
   * The deepest nesting of a value that crosses a thread boundary — an input, a result, a nested call's input
   * or result, a thrown value — counting the value itself as level 1; default 1000. A deeper one fails its
   * own call with `NOT_CLONEABLE` before it is sent. Structured clone writes values its reader cannot read
   * back (the receiving thread's stack overflows from ~1,750 levels of objects on Node 20): raise this only
   * with a larger stack (`resourceLimits.stackSizeMb` for threads, `--stack-size` for the main thread).
   */
  maxDepth?: number;
  /**
   * The deepest chain of nested calls (`ctx.commands` / `ctx.queries`, a handler's own call being depth 1);
   * default 32. A call deeper than this is refused at once with `NESTING_TOO_DEEP`: a handler that calls
   * itself, or a cycle of handlers, fails fast instead of filling the pool.
   */
  maxNestingDepth?: number;
}

/** Told when the pool is done with a task's handler (see PoolTask.watcher). @internal */
export interface AttemptWatcher {
  end(): void;
}

/** One handler execution handed to the pool. @internal */
export interface PoolTask {
  readonly moduleId: number;
  readonly exportName: string;
  /** The message's name: what the thread checks the export against, and `ctx.name`. */
  readonly name: string;
  /** An event subscriber's name (errors then name `<event>:<subscriber>`); undefined otherwise. */
  readonly subscriber: string | undefined;
  readonly kind: MessageKind;
  readonly input: unknown;
  readonly metadata: Metadata;
  readonly signal: AbortSignal | undefined;
  /** A `timeout()`'s cancellation (it follows the caller's signal too); when set, `signal` is not read. */
  readonly cancel: CancelToken | undefined;
  readonly cancelGraceMs: number | undefined;
  /** Run on this thread instead of the pool: it is the one awaiting this nested call. */
  readonly originThread: number | undefined;
  /**
   * Told once (`end()`) when the pool is done with the task — its handler returned or threw, its thread is
   * gone, or it never started — which may be after the call settled (a cancelled handler in its grace
   * period): a keyed call's ticket, which holds its key until then. An object, not a callback: no closure per
   * call.
   */
  readonly watcher: AttemptWatcher | undefined;
  /**
   * Told (by `run`, not `runStream`) once, as the call's outcome is decided and before its promise settles:
   * `failure` is the error the caller gets when `failed`. Lets the caller's terminal count the call without
   * a continuation of its own (a promise and two closures less per call).
   */
  readonly settling?: ((failure: unknown, failed: boolean) => void) | undefined;
  /** The call's nesting depth (see `Call.depth`). */
  readonly depth: number;
  /** The handler's metrics slot, or -1: the thread counts the call there when it finishes it. */
  readonly metricsSlot: number;
  /** The metrics layer's claim for this attempt, marked when the thread counted it. */
  readonly ticket: CallTicket | undefined;
  /** A `performance.now()` reading of just before `run` (saves the pool a clock read), or -1. */
  readonly queuedAt: number;
}

const hostPath = fileURLToPath(new URL('./handlerHost.cjs', import.meta.url));
// Module URLs are short; 256 KiB holds a few thousand of them.
const moduleTableBytes = 256 * 1024;
// Slots for nested calls, which bypass the queue and so are not bounded by maxQueue.
const nestedSlotHeadroom = 4096;
// `utilization` is the busy fraction over the last ~10 s: a sample of the busy total each second, 11 kept.
const utilizationSampleMs = 1000;
const utilizationSamples = 11;
const timeOrigin = performance.timeOrigin;

/**
 * The pool threads' default `niceIncrement`: none. A lower priority is a trade (see the option) that helps a
 * service whose main thread must answer at once and costs one whose threads wait on other busy processes.
 */
const DEFAULT_NICE_INCREMENT = 0;

function positiveInt(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `WorkerPool: options.${name} must be an integer >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * The piscina thread pool that runs worker handlers, shared by a {@link CommandBus} and a {@link QueryBus}.
 * The main thread only routes; handlers registered with `inWorker()` run here.
 * @throws CqrsError `INVALID_REGISTRATION` for a bad option (the message names it).
 */
export class WorkerPool {
  /** @internal */
  readonly directory: BusDirectory;
  /** The metrics region every thread of this pool records into; buses on the pool allocate their slots here. @internal */
  readonly metrics: MetricsRegion;
  /**
   * Per-key order of the buses on this pool: ordering groups, and the calls waiting for their key, which
   * count against `maxQueue` with the calls waiting for a thread. @internal
   */
  readonly ordering: OrderingTable;
  private readonly piscina: Piscina;
  private readonly scheduler: TaskScheduler;
  private readonly modules = new ModuleTable(moduleTableBytes);
  private readonly cancelFlags: CancelFlags;
  private readonly links: ThreadLinks;
  private readonly streams: StreamRunner;
  private readonly cancelGraceMs: number;
  private readonly queueLimit: number;
  private readonly maxDepth: number;
  /** How long the threads were busy, counted by the threads (BusyTime.ts). */
  private readonly busy: BusyTime;
  /** Outcomes threads hold while they run calls they may be terminated over (HeldOutcomes.ts). */
  private readonly held: HeldOutcomes;
  private readonly window: UtilizationWindow;
  private readonly sampler: NodeJS.Timeout;
  /** What each PooledCall is told of this pool. */
  private readonly side: PoolSide;
  private running = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: WorkerPoolOptions = {}) {
    const threads = positiveInt('threads', options.threads ?? availableParallelism(), 1);
    const minThreads = positiveInt('minThreads', options.minThreads ?? threads, 0);
    if (minThreads > threads) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `WorkerPool: options.minThreads (${minThreads}) must not exceed threads (${threads})`,
      );
    }
    const maxQueue = positiveInt('maxQueue', options.maxQueue ?? 10_000, 0);
    this.queueLimit = maxQueue;
    const perThread = positiveInt('concurrentTasksPerThread', options.concurrentTasksPerThread ?? 1, 1);
    this.cancelGraceMs = positiveInt('cancelGraceMs', options.cancelGraceMs ?? 1000, 0);
    const idleTimeout = positiveInt('idleTimeoutMs', options.idleTimeoutMs ?? 60_000, 0);
    const niceIncrement = positiveInt('niceIncrement', options.niceIncrement ?? DEFAULT_NICE_INCREMENT, 0);
    if (niceIncrement > 19) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `WorkerPool: options.niceIncrement must be an integer from 0 to 19, got ${niceIncrement}`,
      );
    }
    const batching = batchLimits(options.batching);
    this.maxDepth = positiveInt('maxDepth', options.maxDepth ?? DEFAULT_MAX_DEPTH, 1);
    const maxNestingDepth = positiveInt(
      'maxNestingDepth',
      options.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH,
      0,
    );
    this.directory = new BusDirectory({ maxDepth: this.maxDepth, maxNestingDepth });
    this.ordering = new OrderingTable(() => this.queueLimit - this.queueSize - this.ordering.waiting);
    const capacity = threads * perThread;
    this.cancelFlags = new CancelFlags(maxQueue + capacity * (batching?.maxSize ?? 1) + nestedSlotHeadroom);
    const credits = new StreamCredits(this.cancelFlags.maxSlots);
    this.side = {
      cancelFlags: this.cancelFlags,
      cancelGraceMs: this.cancelGraceMs,
      settleCount: (outcome, task) => this.settleCount(outcome, task),
      settleLostCount: (slot, task) => this.settleLostCount(slot, task),
      recordQueueWait: (slot, task, queuedAt) => this.recordQueueWait(slot, task, queuedAt),
      terminateRunner: (slot, gen) => this.terminateRunner(slot, gen),
      drop: (call) => this.scheduler.drop(call),
      ended: () => this.ended(),
    };
    this.streams = new StreamRunner({
      cancelFlags: this.cancelFlags,
      credits,
      cancelGraceMs: this.cancelGraceMs,
      post: (message, kill, originThread) => this.post(message, kill, originThread),
      settleCount: (outcome, task) => this.settleCount(outcome, task),
      settleLostCount: (slot, task) => this.settleLostCount(slot, task),
      threadAlive: (threadId) => this.links.has(threadId),
      hold: () => this.links.hold(),
      release: () => this.links.release(),
    });
    this.links = new ThreadLinks(
      this.directory,
      (early) => this.scheduler.resolveEarly(early),
      (chunk) => this.streams.deliver(chunk),
      (threadId) => {
        // Outcomes it had copied to shared memory before a call it was terminated over: they settle first,
        // so the scheduler does not fail those calls as lost with their thread.
        const held = this.held.takeFrom(threadId);
        if (held !== undefined) {
          this.scheduler.resolveEarly({ early: true, c: held.c, g: held.g, o: { f: held.f, v: held.v } });
        }
        this.streams.threadGone(threadId);
        this.directory.threadGone(threadId);
        this.scheduler.threadGone(threadId);
      },
    );
    // A stripe per thread, so no two threads write the same cache line when they record.
    this.metrics = new MetricsRegion({ threadStripes: threads });
    const idleWait = options.idleWait ?? 'block';
    if (idleWait !== 'block' && idleWait !== 'loop') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `WorkerPool: options.idleWait must be 'block' or 'loop', got ${safeString(idleWait)}`,
      );
    }
    this.busy = new BusyTime(threads);
    this.window = new UtilizationWindow(threads, utilizationSamples);
    this.window.sample(nowMicros(), 0);
    // Unref'd: the sampling never keeps a process alive; `close()` stops it.
    this.sampler = setInterval(() => {
      const now = nowMicros();
      this.window.sample(now, this.busy.busyMicros(now));
    }, utilizationSampleMs).unref();
    // Four entries a thread: a thread holds the entry it runs until its outcome is posted, and a closed loop
    // of 3 callers a thread keeps 2 calls a thread waiting. Threads that run several calls at once
    // (`concurrentTasksPerThread`, handlers that await I/O) do not wait for a round trip between calls, so
    // they get no board.
    if (options.board !== undefined && typeof options.board !== 'boolean') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `WorkerPool: options.board must be a boolean, got ${safeString(options.board)}`,
      );
    }
    const board = perThread === 1 && options.board !== false ? new CallBoard(4 * threads) : undefined;
    // A line a thread, and as many again for threads that replace those gone before their lines are read.
    this.held = new HeldOutcomes(2 * threads + 2);
    const workerData: PoolWorkerData = {
      modules: this.modules.buffer,
      cancel: this.cancelFlags.buffer,
      cancelTimes: this.cancelFlags.timesBuffer,
      credits: credits.buffer,
      metrics: this.metrics.buffer,
      busy: this.busy.buffer,
      held: this.held.buffer,
      maxDepth: this.maxDepth,
      guard: idleWait === 'block',
      ...(board === undefined ? {} : { board: board.buffer }),
      ...(options.threadLogger === undefined ? {} : { logger: this.threadLoggerRef(options.threadLogger) }),
    };
    this.piscina = new Piscina({
      filename: hostPath,
      maxThreads: threads,
      minThreads,
      maxQueue,
      idleTimeout,
      concurrentTasksPerWorker: perThread,
      // The default queue re-queues a task it cannot place at the back, which wrecks tail latency under load.
      stricterFIFO: true,
      // 'sync' parks an idle thread in a blocking Atomics.wait: the quickest wake, at the price of a frozen
      // event loop between tasks — which the thread's guard makes safe (see PoolWorkerData.guard). 'async'
      // waits with Atomics.waitAsync, so leftovers run, and die, between tasks.
      atomics: idleWait === 'block' ? 'sync' : 'async',
      niceIncrement,
      workerData,
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
    });
    this.scheduler = new TaskScheduler(this.piscina, {
      capacity,
      batching,
      notStarted: (message) => (this.cancelFlags.flags(message.c) & STARTED) === 0,
      keepAlive: (on) => (on ? this.links.hold() : this.links.release()),
      board,
      finished: (message) => (this.cancelFlags.flags(message.c) & DONE) !== 0,
      draining: () => this.links.draining,
      leftBehind: (message) => {
        const alive = new Set(this.piscina.threads.map((worker) => worker.threadId));
        const left = this.held.find(message.c, message.g, (threadId) => alive.has(threadId));
        return left === undefined ? undefined : outcomeAt({ f: [left.f], v: [left.v] }, 0);
      },
    });
    const onThreadError = options.onThreadError;
    let loggerFailureTold = false;
    this.piscina.on('message', (message: unknown) => {
      if (typeof message !== 'object' || message === null) return;
      if (HELLO in message) this.links.add(message as HelloMessage);
      else if (THREAD_ERROR in message) {
        onThreadError?.(deserializeError((message as ThreadErrorMessage)[THREAD_ERROR]));
      } else if (LOGGER_FAILED in message && !loggerFailureTold) {
        // Every thread fails the same way: told once.
        loggerFailureTold = true;
        const cause = deserializeError((message as LoggerFailedMessage)[LOGGER_FAILED]);
        onThreadError?.(
          new CqrsError(
            'INVALID_REGISTRATION',
            `WorkerPool: options.threadLogger: ${safeString(errorText(cause))}`,
            {
              cause,
            },
          ),
        );
      }
    });
    this.piscina.on('workerDestroy', (worker: { id: number }) => {
      this.links.gone(worker.id);
      // Its line of busy time is freed for the thread that replaces it; a call it was running counts until now.
      this.busy.release(worker.id);
    });
    // piscina emits 'error' for a thread that died with no task on it; unheard, it would crash the process.
    this.piscina.on('error', (err: unknown) => onThreadError?.(err));
  }

  /** Threads alive now. */
  get threads(): number {
    return this.piscina.threads.length;
  }

  /** Calls waiting for a thread. */
  get queueSize(): number {
    return this.scheduler.waiting + this.piscina.queueSize;
  }

  /** Calls that may wait for a thread (`options.maxQueue`); one more is refused with `OVERLOADED`. */
  get maxQueue(): number {
    return this.queueLimit;
  }

  /**
   * Micro-batching so far: batch messages sent, and the calls they carried (calls sent alone are in
   * neither); `calls / messages` is the mean batch size. `pinned`: messages (a call or a batch) a thread
   * took from the board of waiting calls as it finished its last, without a round trip (see README).
   */
  get batchStats(): { messages: number; calls: number; pinned: number } {
    const scheduler = this.scheduler;
    return { messages: scheduler.batches, calls: scheduler.batchedCalls, pinned: scheduler.boardMessages };
  }

  /**
   * The share of the pool's thread capacity (`threads` × time) that was busy over the last 10 s or so (since
   * the pool started, in its first 10 s), 0…1: from {@link busySeconds}, sampled each second. A thread is
   * busy while it holds at least one call, also one awaiting I/O or a nested call.
   */
  get utilization(): number {
    const now = nowMicros();
    return this.window.fraction(now, this.busy.busyMicros(now));
  }

  /**
   * Thread-seconds the pool's threads have been busy (holding at least one call) since it started, a call
   * still running included up to now: counted in shared memory by the threads themselves. Never decreases;
   * its rate of increase over a window, divided by the threads, is their busy fraction.
   */
  get busySeconds(): number {
    return this.busy.busyMicros() / 1e6;
  }

  /** Calls handed to the pool and not finished there: queued and running, including cancelled ones still inside their grace period. */
  get inFlight(): number {
    return this.running;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Checks `options.threadLogger` and registers its module in the table, like a handler module's. */
  private threadLoggerRef(option: { module: URL | string; export?: string }): { m: number; x: string } {
    if (typeof option !== 'object' || option === null) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        'WorkerPool: options.threadLogger must be { module, export? }',
      );
    }
    const exportName = option.export ?? 'logger';
    if (typeof exportName !== 'string' || exportName === '') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        'WorkerPool: options.threadLogger.export must be a non-empty string',
      );
    }
    const href = moduleHref(option.module, 'WorkerPool: options.threadLogger.module');
    return { m: this.registerModule(href), x: exportName };
  }

  /** Adds a handler module to the table threads may import; returns its index. @internal */
  registerModule(moduleUrl: string): number {
    const id = this.modules.register(moduleUrl);
    if (id < 0)
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `WorkerPool: module table full, cannot register ${moduleUrl}`,
      );
    return id;
  }

  /**
   * Loads `exportName` of module `moduleId` in a thread and checks it handles `name`; errors name `label`
   * (an event subscriber's `<event>:<subscriber>`). @internal
   */
  async probe(moduleId: number, exportName: string, name: string, label = name): Promise<void> {
    if (this.closing !== undefined) {
      throw new CqrsError('CLOSED', `${label}: the worker pool is closed`, { handler: label });
    }
    const task: TaskMessage = {
      m: moduleId,
      x: exportName,
      n: name,
      i: undefined,
      md: {},
      c: 0,
      g: 0,
      s: -1,
      d: 0,
      probe: true,
    };
    const outcome = await this.post(task, undefined, undefined);
    if (!outcome.ok) {
      throw new CqrsError('INVALID_REGISTRATION', `${label}: ${errorMessage(outcome)}`, {
        cause: deserializeError(outcome.e),
        handler: label,
      });
    }
  }

  /**
   * Runs a handler in a thread. Settles at once with the caller's abort (the handler is told through the
   * shared flag; one still running after the grace period has its thread terminated).
   * @internal
   */
  run(task: PoolTask): Promise<unknown> {
    const refusal = this.refusal(task);
    if (refusal !== undefined) return refuse(task, refusal);
    const slot = this.cancelFlags.acquire();
    if (slot < 0) return refuse(task, tooManyInFlight(task));
    const gen = this.cancelFlags.generation(slot);
    // The queue wait of a recorded call runs from here to its start in a thread (`recordQueueWait`).
    const queuedAt =
      task.metricsSlot < 0 ? 0 : timeOrigin + (task.queuedAt >= 0 ? task.queuedAt : performance.now());
    const abortable = canAbort(task);
    const call = new PooledCall(this.side, task, slot, gen, queuedAt, abortable);
    const answer = settleInto(call);
    const originThread = task.originThread;
    this.running++;
    if (originThread !== undefined) {
      // A nested call runs on its caller's thread, which is never terminated over it: it is only told.
      this.links.runOn(originThread, taskMessage(task, slot, gen)).then(
        (outcome) => call.settle(outcome),
        (err: unknown) => call.fail(err),
      );
    } else {
      // `a`: the thread may be terminated over this call (it can be cancelled, and one running past its grace
      // period is), so it copies the outcomes it holds to shared memory before starting it.
      call.scheduled = this.scheduler.enqueue(taskMessage(task, slot, gen, abortable ? 1 : 0), call);
    }
    if (abortable) listenAbort(task, call);
    return answer;
  }

  /**
   * How long a recorded call waited before its handler started in a thread (for the calls before it in its
   * batch too): from `queuedAt`, when it was handed to the pool, to the start its thread wrote beside its
   * cancel flag. A call that never started (aborted while queued, its thread gone first) has no queue wait.
   */
  private recordQueueWait(slot: number, task: PoolTask, queuedAt: number): void {
    if (queuedAt === 0 || (this.cancelFlags.flags(slot) & STARTED) === 0) return;
    this.metrics.recordQueueWait(task.metricsSlot, (this.cancelFlags.startedAt(slot) - queuedAt) * 1000);
  }

  /**
   * Runs a streaming query's handler in a thread: its items go into `sink` as they come (see StreamRunner.ts).
   * Settles when the stream has ended — every item delivered — or at once with the caller's abort.
   * @internal
   */
  runStream(task: PoolTask, sink: StreamSink): Promise<void> {
    const refusal = this.refusal(task);
    if (refusal !== undefined) return refuse(task, refusal);
    const slot = this.cancelFlags.acquire();
    if (slot < 0) return refuse(task, tooManyInFlight(task));
    const gen = this.cancelFlags.generation(slot);
    const message: TaskMessage = { ...taskMessage(task, slot, gen), st: 1 };
    return this.streams.run(task, sink, message);
  }

  /** Why `task` cannot be posted now (closed pool, aborted, too deep an input, full queue), or undefined. */
  private refusal(task: PoolTask): CqrsError | undefined {
    const label = labelOf(task);
    if (this.closing !== undefined) {
      return new CqrsError('CLOSED', `${label}: the worker pool is closed`, { handler: label });
    }
    // Through callAbort, not `signal`: under a timeout there is only a cheap token (see CancelToken.ts).
    if (isAborted(task)) return abortErrorFor(abortReason(task), label);
    // A value the thread could not decode would be dropped there, and the call never settle (valueDepth.ts).
    if (exceedsDepth(task.input, this.maxDepth) || exceedsDepth(task.metadata, this.maxDepth)) {
      return new CqrsError(
        'NOT_CLONEABLE',
        `${label}: the input is nested deeper than ${this.maxDepth} levels (WorkerPool maxDepth) and cannot cross to a thread`,
        { handler: label },
      );
    }
    // Calls wait in the scheduler (see TaskScheduler.ts) while every thread is busy; maxQueue bounds that
    // wait, together with the calls waiting for their ordering key. Nested tasks never queue.
    if (
      task.originThread === undefined &&
      this.scheduler.saturated &&
      this.scheduler.waiting + this.piscina.queueSize + this.ordering.waiting >= this.queueLimit
    ) {
      return new CqrsError('OVERLOADED', `${label}: the pool's queue is full`, { handler: label });
    }
    return undefined;
  }

  /** The thread counted this call: the metrics layer must not count it again. */
  private settleCount(outcome: TaskOutcome, task: PoolTask): void {
    if (outcome.r === true && task.ticket !== undefined) task.ticket.claimed = true;
  }

  /**
   * The thread died without an answer. If its handler had finished, the thread already counted the call
   * (the DONE flag says so, and FAILED how): then only a success needs turning into the failure the caller
   * now gets. Otherwise the metrics layer counts it.
   */
  private settleLostCount(slot: number, task: PoolTask): void {
    const flags = this.cancelFlags.flags(slot);
    if ((flags & DONE) === 0 || task.ticket === undefined || task.metricsSlot < 0) return;
    task.ticket.claimed = true;
    if ((flags & FAILED) === 0) this.metrics.recordLateFailure(task.metricsSlot);
  }

  /**
   * Terminates the thread that runs the call in `slot` (generation `gen`), if it runs it still: a cancelled
   * call past its grace period takes its thread with it, and piscina replaces the thread. Its batch-mates
   * and board calls that had not started run again; those that finished left their outcomes in shared
   * memory (HeldOutcomes), or sent them, before it started (handlerHost's runBatch), and they stand. The claim makes "runs it still" exact: a handler that
   * ended before it keeps its thread, and one that ends after it ends its thread's work there.
   */
  private terminateRunner(slot: number, gen: number): void {
    if (!this.cancelFlags.claim(slot, gen)) return;
    const runner = this.cancelFlags.runnerOf(slot);
    const thread = this.piscina.threads.find((worker) => worker.threadId === runner);
    void thread?.terminate();
  }

  /** Posts a task to piscina or to its origin thread, keeping the count `close()` drains. */
  private post(
    task: TaskMessage,
    kill: KillSwitch | undefined,
    originThread: number | undefined,
  ): Promise<TaskOutcome> {
    this.running++;
    const execution: Promise<TaskOutcome> =
      originThread !== undefined ? this.links.runOn(originThread, task) : this.scheduler.submit(task, kill);
    const ended = (): void => this.ended();
    execution.then(ended, ended);
    return execution;
  }

  /** A call posted here ended: `close()` waits for the last. */
  private ended(): void {
    if (--this.running === 0) this.drained?.();
  }

  /**
   * Refuses new calls with `CLOSED`, waits for every running handler to finish (a cancelled one at most its
   * grace period), then stops the threads. Idempotent. Close the buses first so their in-flight calls drain.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sampler);
      if (this.running > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.links.closeAll();
      await this.piscina.destroy();
    })();
    return this.closing;
  }
}

/**
 * The message that carries `task` to a thread, under cancel slot `slot` of generation `gen`; `a` 1 when its
 * thread may be terminated over it. An event subscriber's task carries its name (`sb`); other tasks carry
 * no such key at all, so their messages clone as before.
 */
function taskMessage(task: PoolTask, slot: number, gen: number, a: 0 | 1 = 0): TaskMessage {
  const plain: TaskMessage = {
    m: task.moduleId,
    x: task.exportName,
    n: task.name,
    k: task.kind,
    i: task.input,
    md: task.metadata,
    c: slot,
    g: gen,
    s: task.metricsSlot,
    d: task.depth,
    a,
  };
  return task.subscriber === undefined ? plain : { ...plain, sb: task.subscriber };
}

function tooManyInFlight(task: PoolTask): CqrsError {
  return new CqrsError('OVERLOADED', `${labelOf(task)}: too many calls in flight`, {
    handler: labelOf(task),
  });
}

/** A task refused before it was posted: its handler never runs, so the pool is done with it at once. */
function refuse(task: PoolTask, err: CqrsError): Promise<never> {
  task.watcher?.end();
  task.settling?.(err, true);
  return Promise.reject(err);
}

function batchLimits(option: WorkerPoolOptions['batching']): BatchLimits | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === true) return { maxSize: 64, maxDelayMs: 16 };
  if (typeof option !== 'object' || option === null) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'WorkerPool: options.batching must be a boolean or { maxSize?, maxDelayMs? }',
    );
  }
  const maxSize = positiveInt('batching.maxSize', option.maxSize ?? 64, 1);
  const maxDelayMs = option.maxDelayMs ?? 16;
  if (typeof maxDelayMs !== 'number' || !(maxDelayMs >= 0) || !Number.isFinite(maxDelayMs)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `WorkerPool: options.batching.maxDelayMs must be a finite number >= 0, got ${String(maxDelayMs)}`,
    );
  }
  return maxSize === 1 ? undefined : { maxSize, maxDelayMs };
}

function errorMessage(outcome: Extract<TaskOutcome, { ok: false }>): string {
  return outcome.e.t === 'error' ? outcome.e.message : safeString(outcome.e.value);
}

/** The name a task's errors carry: its message's, or `<event>:<subscriber>`. @internal */
export function labelOf(task: PoolTask): string {
  return task.subscriber === undefined ? task.name : `${task.name}:${task.subscriber}`;
}

/** A task's value, or the CqrsError its failed outcome stands for. @internal */
export function unwrap(outcome: TaskOutcome, task: PoolTask): unknown {
  if (outcome.ok) return outcome.cl === 1 ? fromResultColumns(outcome.v as ResultColumns) : outcome.v;
  const name = labelOf(task);
  switch (outcome.k) {
    case 'handler':
      throw new CqrsError('HANDLER_FAILED', `${name} failed: ${errorMessage(outcome)}`, {
        cause: deserializeError(outcome.e),
        handler: name,
      });
    case 'load':
      throw new CqrsError('INVALID_REGISTRATION', `${name}: ${errorMessage(outcome)}`, {
        cause: deserializeError(outcome.e),
        handler: name,
      });
    case 'cancelled':
      throw new CqrsError('ABORTED', `${name}: cancelled before it started`, { handler: name });
    case 'result':
      throw new CqrsError('NOT_CLONEABLE', `${name}: the result cannot be cloned: ${errorMessage(outcome)}`, {
        cause: deserializeError(outcome.e),
        handler: name,
      });
  }
}

/** Maps a piscina rejection (our host never throws, so it is about the thread or the queue) to a code. @internal */
export function threadFailure(err: unknown, task: PoolTask): CqrsError {
  const name = labelOf(task);
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | null;
  if (e?.message === 'Task queue is at limit') {
    return new CqrsError('OVERLOADED', `${name}: the pool's queue is full`, { handler: name });
  }
  // A transferable (a MessagePort) in the input makes postMessage throw this instead of DataCloneError; the
  // task was never posted and the thread is fine, so it is the caller's data, not a crash.
  if (e?.name === 'DataCloneError' || e?.code === 'ERR_MISSING_TRANSFERABLE_IN_TRANSFER_LIST') {
    return new CqrsError('NOT_CLONEABLE', `${name}: ${String(e.message)}`, { cause: err, handler: name });
  }
  if (
    e?.message === 'Terminating worker thread' ||
    (e?.name === 'AbortError' && e.message === 'pool is closed')
  ) {
    return new CqrsError('CLOSED', `${name}: the worker pool closed`, { cause: err, handler: name });
  }
  if (isCqrsError(err)) return err;
  // postMessage fails with whatever serializing the input threw (a getter that throws, say), not only with
  // DataCloneError, and piscina reports that as it reports a dead thread. An input that cannot be cloned
  // never reached a thread, so that is what failed. Checked only here, on the failure path, at no cost to
  // calls that succeed.
  const refused = cloneFailure(task);
  if (refused !== undefined) {
    return new CqrsError(
      'NOT_CLONEABLE',
      `${name}: the input cannot be cloned: ${safeString(errorText(refused))}`,
      {
        cause: err,
        handler: name,
      },
    );
  }
  return new CqrsError('WORKER_CRASHED', `${name}: the thread running the handler died`, {
    cause: err,
    handler: name,
  });
}

/** What structured clone throws for the task's input or metadata, or undefined when both clone. */
function cloneFailure(task: PoolTask): unknown {
  try {
    structuredClone([task.input, task.metadata]);
    return undefined;
  } catch (err) {
    return err ?? new Error('not cloneable');
  }
}

function errorText(err: unknown): unknown {
  return err instanceof Error ? err.message : err;
}
