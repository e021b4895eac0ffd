/**
 * The entry of every pool thread. piscina calls the default export once per task; it loads the handler
 * module the task names (once per thread), runs the handler, and answers with plain data.
 *
 * It imports only the protocol, the shared-memory views and error serialization: a thread never holds a bus.
 */
import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { serializeError } from '../packages/core/src/errors/serialize.js';
import type { HandlerFn } from '../packages/core/src/handler/handle.js';
import { isWorkerHandler } from '../packages/core/src/handler/handle.js';
import type { Logger } from '../packages/core/src/handler/Logger.js';
import { isLogger, noopLogger } from '../packages/core/src/handler/Logger.js';
import {
  decodeBatch,
  encodeOutcomes,
  outcomeFlags,
  outcomeValue,
} from '../packages/core/src/pool/batchCodec.js';
import type {
  BatchMessage,
  BatchOutcome,
  EarlyOutcomes,
  FailureKind,
  NestedDispatchApi,
  PoolWorkerData,
  RunRequest,
  TaskMessage,
  TaskOutcome,
} from '../packages/core/src/pool/protocol.js';
import {
  EARLY_FLUSH_MS,
  HELLO,
  LOGGER_FAILED,
  SLOW_CALL_MS,
  THREAD_ERROR,
} from '../packages/core/src/pool/protocol.js';
import type { ResultColumns } from '../packages/core/src/pool/resultColumns.js';
import { RESULT_COLUMNS_DEPTH, resultColumns } from '../packages/core/src/pool/resultColumns.js';
import { SURELY_CLONEABLE_DEPTH, surelyCloneable } from '../packages/core/src/pool/surelyCloneable.js';
import { exceedsDepth } from '../packages/core/src/pool/valueDepth.js';
import { BusyClock } from '../packages/core/src/shared/BusyTime.js';
import { CallBoardView } from '../packages/core/src/shared/CallBoard.js';
import { CancelFlagsView, FinishResult } from '../packages/core/src/shared/CancelFlags.js';
import { HeldOutcomesLine } from '../packages/core/src/shared/HeldOutcomes.js';
import { MetricsView } from '../packages/core/src/shared/MetricsView.js';
import { ModuleTableView } from '../packages/core/src/shared/ModuleTable.js';
import { StreamCreditsView } from '../packages/core/src/shared/StreamCredits.js';
import { cannotImport, loadModule } from './loadModule.js';
import type { StreamHost } from './streamProducer.js';
import { runStreamTask } from './streamProducer.js';
import { ThreadContext } from './ThreadContext.js';

const data = workerData as PoolWorkerData;
const modules = new ModuleTableView(data.modules);
const cancelFlags = new CancelFlagsView(data.cancel, data.cancelTimes);
const metrics = new MetricsView(data.metrics);
// This thread's stripe of every handler's counters: claimed once, so its writes never share a cache line
// with another thread's.
const stripe = metrics.claimStripe();
// This thread's line of busy time: a busy interval runs while it holds a call (a batch, a nested call).
const busy = new BusyClock(data.busy, threadId);
// Calls the main thread pinned for the first thread free (CallBoard.ts): taken after each message.
const board = data.board === undefined ? undefined : new CallBoardView(data.board);
// Where the outcomes this thread holds go before it starts a call it may be terminated over (HeldOutcomes.ts);
// undefined when no line was free: it then posts them.
const shelf = data.held === undefined ? undefined : HeldOutcomesLine.claim(data.held, threadId);
const timeOrigin = performance.timeOrigin;

// Nested dispatch: `ctx.commands` / `ctx.queries` / `ctx.events` call the main thread's buses over `bus`
// (comlink), and the main thread runs nested worker handlers back on this thread through `run` — this
// thread is the one awaiting them, so they never wait for a free pool thread (no deadlock, even with one
// thread).
const busChannel = new MessageChannel();
const runChannel = new MessageChannel();
const mainBuses = Comlink.wrap<NestedDispatchApi>(nodeEndpoint(busChannel.port1));
runChannel.port1.on('message', (request: RunRequest) => {
  busy.enter();
  void runTask(request.task).then((outcome) => {
    busy.leave();
    runChannel.port1.postMessage({ id: request.id, outcome });
  });
});
parentPort?.postMessage({ [HELLO]: true, threadId, bus: busChannel.port2, run: runChannel.port2 }, [
  busChannel.port2,
  runChannel.port2,
]);

// The base of `ctx.logger`: the pool's `threadLogger` export, imported once, when the thread starts; the first
// tasks wait for it. A module that cannot be loaded leaves the no-op logger, and the pool is told.
// Not a top-level await: piscina first tries `require()` on this file, and Node's require(esm) of a module
// graph with top-level await can abort the whole process (V8 "IsGraphAsync must be used on an instantiated
// module") when a second task asks for the module while the first load is still under way.
let baseLogger: Logger | undefined;
const loggerReady = loadThreadLogger().then((logger) => {
  baseLogger = logger;
});

async function loadThreadLogger(): Promise<Logger> {
  const ref = data.logger;
  if (ref === undefined) return noopLogger;
  const url = modules.url(ref.m);
  try {
    if (url === undefined) throw new Error(`module #${ref.m} was never registered on the main thread`);
    const exported = (await loadModule(url))[ref.x];
    if (!isLogger(exported)) {
      throw new Error(`export '${ref.x}' of ${url} is not a pino-style logger (info, warn, error)`);
    }
    return exported;
  } catch (err) {
    parentPort?.postMessage({ [LOGGER_FAILED]: serializeError(err) });
    return noopLogger;
  }
}

// With `idleWait: 'block'` the event loop is frozen between tasks (see PoolWorkerData.guard): a timer or a
// rejected promise a handler left behind fires during some later, unrelated task. Uncaught, it would kill the
// thread and fail that task. Caught here, it is reported to the main thread, and the thread retires when its
// next task arrives — before starting it, so the pool sends that task again, to another thread.
let retiring = false;
if (data.guard) {
  const caught = (err: unknown): void => {
    parentPort?.postMessage({ [THREAD_ERROR]: serializeError(err) });
    retiring = true;
  };
  process.on('uncaughtException', caught);
  process.on('unhandledRejection', caught);
}

const cancelledOutcome: TaskOutcome = {
  ok: false,
  k: 'cancelled',
  e: { t: 'error', name: 'CqrsError', message: 'cancelled before it started' },
};

// Module namespace promises by module index, and resolved handlers by module index, export and name, so the
// steady state of a task costs two Map lookups and no import.
const imports = new Map<number, Promise<Record<string, unknown>>>();
const handlers = new Map<string, HandlerFn<never>>();

function loadFailure(message: string, cause?: unknown): TaskOutcome {
  const e = serializeError(cause === undefined ? new Error(message) : new Error(message, { cause }));
  return { ok: false, k: 'load', e };
}

// The last handler resolved: a run of calls to one handler (the common case, and every batch of them)
// skips building the cache key.
let last: { m: number; x: string; n: string; fn: HandlerFn<never> } | undefined;

function cachedHandler(task: TaskMessage): HandlerFn<never> | undefined {
  if (last !== undefined && last.m === task.m && last.x === task.x && last.n === task.n) return last.fn;
  // The name is part of the key: the check that the export handles this name must not be skipped because
  // the same export already loaded for another registration (which would run it with the wrong input).
  const fn = handlers.get(`${task.m}\u0000${task.x}\u0000${task.n}`);
  if (fn !== undefined) last = { m: task.m, x: task.x, n: task.n, fn };
  return fn;
}

async function resolveHandler(task: TaskMessage): Promise<HandlerFn<never> | TaskOutcome> {
  const key = `${task.m}\u0000${task.x}\u0000${task.n}`;
  const url = modules.url(task.m);
  if (url === undefined) return loadFailure(`module #${task.m} was never registered on the main thread`);
  let namespace = imports.get(task.m);
  if (namespace === undefined) {
    namespace = loadModule(url);
    imports.set(task.m, namespace);
  }
  let exported: unknown;
  try {
    exported = (await namespace)[task.x];
  } catch (err) {
    imports.delete(task.m); // a later registration may fix the file; do not cache the failure
    return loadFailure(cannotImport(url, err), err);
  }
  let fn: HandlerFn<never>;
  if (isWorkerHandler(exported)) {
    if (exported.name !== task.n) {
      return loadFailure(`export '${task.x}' of ${url} handles '${exported.name}', not '${task.n}'`);
    }
    fn = exported.fn as HandlerFn<never>;
  } else if (typeof exported === 'function') {
    fn = exported as HandlerFn<never>;
  } else {
    return loadFailure(`export '${task.x}' of ${url} is not a handler (use handle(definition, fn))`);
  }
  handlers.set(key, fn);
  return fn;
}

// piscina posts the outcome after runTask returns, outside any try of ours: a value structured clone refuses
// would throw there, kill the thread (failing every task on it with WORKER_CRASHED) and reach the caller as
// an empty error; a value nested too deep for the main thread to decode would be dropped there, and its call
// never settle. So an object result is checked here first: plain data by a walk that copies nothing (most
// results), anything else for its depth and by a test clone.
function cloneFailure(value: unknown): unknown {
  if (
    value === null ||
    (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol')
  ) {
    return undefined;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return undefined;
  }
  // The walk's own depth bound lies within the pool's unless `maxDepth` was set lower.
  const walkDecides = data.maxDepth >= SURELY_CLONEABLE_DEPTH;
  try {
    if (walkDecides && surelyCloneable(value)) return undefined;
  } catch {
    // A getter threw during the walk: the test clone below meets it too, and reports it.
  }
  if (exceedsDepth(value, data.maxDepth)) return tooDeep('the value');
  try {
    structuredClone(value);
    return undefined;
  } catch (err) {
    return err;
  }
}

// Streaming queries' tasks (see streamProducer.ts): their items go to the main thread on the run port.
const streamHost: StreamHost = {
  port: runChannel.port1,
  credits: new StreamCreditsView(data.credits),
  cancelFlags,
  metrics,
  stripe,
  threadId,
  cloneFailure,
};

function tooDeep(what: string): Error {
  return new Error(`${what} is nested deeper than ${data.maxDepth} levels (WorkerPool maxDepth)`);
}

/**
 * piscina's entry: one task, or a batch of them (micro-batching, see TaskScheduler.ts) run one after another,
 * as a thread runs single tasks, answered together. Then, while calls wait on the CallBoard, the thread takes
 * them one after another (`serveBoard`) before it answers: its own outcomes go early, so no caller waits for
 * that.
 */
export default function run(message: TaskMessage | BatchMessage): Promise<TaskOutcome | BatchOutcome> {
  // Nothing of this message has started: the pool sends it again when this thread is gone.
  if (retiring) process.exit(1);
  return runThenBoard(message);
}

async function runThenBoard(message: TaskMessage | BatchMessage): Promise<TaskOutcome | BatchOutcome> {
  const ran = await runMessage(message);
  const { tasks, outcomes, sent } = ran;
  if (!boardAfter(message)) {
    return 'w' in message ? encodeOutcomes(outcomes, sent, tasks.length, 0) : (outcomes[0] as TaskOutcome);
  }
  sendUnsent(ran);
  const served = await serveBoard();
  return { ...encodeOutcomes(outcomes, tasks.length, tasks.length, 0), b: served };
}

/**
 * Whether the thread goes on to the board after `message`: not after a stream or a probe — each travels
 * alone, never in a batch — nor once the thread is retiring.
 */
function boardAfter(message: TaskMessage | BatchMessage): boolean {
  if (board?.pinned !== true || retiring) return false;
  return 'w' in message || (message.st !== 1 && message.probe !== true);
}

/**
 * Runs one message, a task or a batch, as one busy interval. It ends before the outcomes still unsent are
 * posted: once a caller has its result, the busy time of the call stands still.
 */
async function runMessage(message: TaskMessage | BatchMessage): Promise<MessageRun> {
  busy.enter();
  if ('w' in message) {
    const ran = await runBatch(message);
    busy.leave();
    return ran;
  }
  const outcome = await runTask(message);
  busy.leave();
  return { tasks: [message], outcomes: [outcome], sent: 0 };
}

/** Posts the outcomes of `ran` that did not go early yet. */
function sendUnsent({ tasks, outcomes, sent }: MessageRun): void {
  if (sent < tasks.length) sendEarly(tasks, outcomes, sent, tasks.length);
}

/**
 * Runs the calls pinned on the board, oldest first, until none is left; answers how many. Each message's
 * outcomes go early, and its entry is released only after they are posted: should the thread die running
 * it, the entry still names this thread, and the pool reruns what never started (TaskScheduler.threadGone).
 */
async function serveBoard(): Promise<number> {
  const view = board as CallBoardView;
  let served = 0;
  while (!retiring) {
    let taken = view.take(threadId);
    if (taken === undefined) {
      // The caller of the outcome just sent is likely to call again: its call is pinned here, not posted.
      view.awaitPin(LINGER_MS);
      taken = view.take(threadId);
      if (taken === undefined) break;
    }
    const ran = await runMessage(taken.message as TaskMessage | BatchMessage);
    sendUnsent(ran);
    served += ran.tasks.length;
    view.release(taken.entry);
  }
  return served;
}

/**
 * How long a thread that has run out of pinned calls waits for the next before it answers: about what the
 * main thread takes to turn an outcome into its caller's next call on a 2-core VM (0.05–0.15 ms).
 */
const LINGER_MS = 0.25;

/** What running one message (a task, or a batch) left behind. */
interface MessageRun {
  readonly tasks: TaskMessage[];
  readonly outcomes: TaskOutcome[];
  /** Outcomes `0 … sent` went early already. */
  readonly sent: number;
}

/**
 * Runs a batch's tasks one after another. Finished calls' outcomes do not wait for the rest of the batch:
 * after a call that took `SLOW_CALL_MS` or more, the outcomes finished so far go to the main thread at once,
 * on the run port (EarlyOutcomes); tiny calls' outcomes gather for up to `EARLY_FLUSH_MS` and go together,
 * many to a message, which is what batching is for. A timer sends them when a later call outlasts that
 * while it awaits something (a call that keeps the thread busy ends first, and they go then).
 *
 * Before a call its thread may be terminated over (`a: 1`: it can be cancelled, and one running past its
 * grace period has its thread terminated), the outcomes gathered so far are copied to shared memory (the
 * thread's shelf, HeldOutcomes.ts): a termination loses none, and they still go in the next message. Where
 * they do not fit there, they go at once instead.
 *
 * A batch sent with `hold` (it left a deep backlog behind, see TaskScheduler.holdFor) gathers outcomes the
 * same way for up to `hold` ms, whatever its calls' length.
 */
async function runBatch(batch: BatchMessage): Promise<MessageRun> {
  const tasks = decodeBatch(batch);
  const outcomes: TaskOutcome[] = new Array(tasks.length);
  const hold = batch.hold;
  const flushAfterMs = hold ?? EARLY_FLUSH_MS;
  let sent = 0;
  let done = 0;
  // Outcomes `sent … shelved` are on the shelf too.
  let shelved = 0;
  let firstUnsentAt = -1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    firstUnsentAt = -1;
    if (done === sent) return;
    sendEarly(tasks, outcomes, sent, done);
    sent = done;
    shelved = done;
    shelf?.clear();
  };
  let started = performance.now();
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as TaskMessage;
    // The thread may be terminated over this call (it can be cancelled): what it holds must outlive it.
    if (task.a === 1 && done > shelved) {
      if (shelve(tasks, outcomes, shelved, done)) shelved = done;
      else flush();
    }
    outcomes[i] = await runTask(task);
    done = i + 1;
    if (done === tasks.length) break;
    const now = performance.now();
    const slow = hold === undefined && now - started >= SLOW_CALL_MS;
    if (slow || (firstUnsentAt >= 0 && now - firstUnsentAt >= flushAfterMs)) flush();
    else if (firstUnsentAt < 0) {
      // The first outcome waiting to go: it goes within `flushAfterMs`, also while a later call awaits.
      firstUnsentAt = now;
      timer = setTimeout(flush, flushAfterMs);
    }
    started = now;
  }
  if (timer !== undefined) clearTimeout(timer);
  // What it holds goes in its answer now (or early, right after): should the thread die before that is
  // posted, its finished calls fail as any whose outcome was lost with its thread.
  shelf?.clear();
  return { tasks, outcomes, sent };
}

/** Copies outcomes `from … to` to this thread's shelf; false when there is none, or they do not fit. */
function shelve(tasks: TaskMessage[], outcomes: TaskOutcome[], from: number, to: number): boolean {
  if (shelf === undefined) return false;
  for (let i = from; i < to; i++) {
    const task = tasks[i] as TaskMessage;
    const outcome = outcomes[i] as TaskOutcome;
    if (!shelf.add(task.c, task.g, outcomeFlags(outcome), outcomeValue(outcome))) return false;
  }
  return true;
}

function sendEarly(tasks: TaskMessage[], outcomes: TaskOutcome[], from: number, to: number): void {
  const c: number[] = [];
  const g: number[] = [];
  for (let i = from; i < to; i++) {
    c.push((tasks[i] as TaskMessage).c);
    g.push((tasks[i] as TaskMessage).g);
  }
  const early: EarlyOutcomes = { early: true, c, g, o: encodeOutcomes(outcomes, from, to, from) };
  runChannel.port1.postMessage(early);
}

/** Runs one task; never throws. */
async function runTask(task: TaskMessage): Promise<TaskOutcome> {
  const handler = cachedHandler(task) ?? (await resolveHandler(task));
  if (typeof handler !== 'function') return handler;
  if (task.probe === true) return { ok: true, v: undefined };
  // A recorded call's start time goes beside its flag (the main thread works out its queue wait from it), and
  // this thread's id (the pool terminates it should the call run on past its grace period once cancelled).
  if (
    !cancelFlags.start(task.c, task.g, task.s >= 0 ? timeOrigin + performance.now() : undefined, threadId)
  ) {
    return cancelledOutcome;
  }
  if (baseLogger === undefined) await loggerReady;
  const ctx = new ThreadContext(task, cancelFlags, mainBuses, threadId, baseLogger as Logger, data.maxDepth);
  if (task.st === 1) return runStreamTask(streamHost, task, handler, ctx);
  const started = performance.now();
  let value: unknown;
  let columns: ResultColumns | undefined;
  let failure: FailureKind | undefined;
  let error: unknown;
  try {
    value = await handler(task.i as never, ctx);
    // An event subscriber's return value means nothing to its publisher: it is dropped here, not cloned
    // and sent back (so no return value can fail a subscriber that did its work).
    if (task.k === 'event') value = undefined;
    else {
      // Rows cross as columns: the main thread rebuilds them in about half the time structured clone takes
      // to read them, and columns need no test clone here (resultColumns.ts). A value sent so is at most
      // RESULT_COLUMNS_DEPTH deep, so a `maxDepth` below that leaves every value to the checks below.
      if (data.maxDepth >= RESULT_COLUMNS_DEPTH) columns = resultColumns(value);
      if (columns === undefined) {
        error = cloneFailure(value);
        if (error !== undefined) failure = 'result';
      }
    }
  } catch (err) {
    failure = 'handler';
    error = err;
  }
  ctx.finish();
  // DONE, for every call that ran, whether it is recorded or not: its outcome is on its way and stands (an
  // abort landing now, its thread dying later in a board session). Counted here, where it ran, unless the
  // caller gave up first (then the main thread counted it). The outcome is built once, with `r` when it
  // applies: a spread that adds a key is far slower in V8.
  const finished = cancelFlags.finish(task.c, task.g, failure !== undefined);
  // Cancelled, past its grace period, and the pool claimed this thread to terminate it just before the
  // handler returned: the thread leaves now, before it starts any other call, so no other call goes with it
  // (what it held went to its shelf, or was posted, before this call started; the calls after it never
  // started, and run elsewhere).
  if (finished === FinishResult.terminating) process.exit(1);
  const counted = finished === FinishResult.done && task.s >= 0;
  const micros = (performance.now() - started) * 1000;
  board?.recordCallTime(micros);
  if (counted) metrics.record(task.s, stripe, micros, failure !== undefined);
  if (failure === undefined) {
    if (columns !== undefined) {
      return counted ? { ok: true, v: columns, r: true, cl: 1 } : { ok: true, v: columns, cl: 1 };
    }
    return counted ? { ok: true, v: value, r: true } : { ok: true, v: value };
  }
  let e = serializeError(error);
  // A thrown value (or an error's field) as deep as a result cannot cross either: its description does.
  if (exceedsDepth(e, data.maxDepth)) e = serializeError(tooDeep(`what ${task.n} threw`));
  return counted ? { ok: false, k: failure, e, r: true } : { ok: false, k: failure, e };
}
