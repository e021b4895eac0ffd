/**
 * The messages between the main thread and pool threads. Everything here is plain data: structured clone
 * keeps nothing else.
 * @internal
 */
import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../errors/serialize.js';
import type { PublishStrategy } from '../handler/EventClient.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { MessageKind } from '../messages/Definition.js';
import type { ItemColumns } from './itemColumns.js';

/** One handler execution, sent through piscina (or through a thread's run port for nested calls). */
export interface TaskMessage {
  /** Module index in the shared module table. */
  readonly m: number;
  /** Export name. */
  readonly x: string;
  /** Handler (definition) name. */
  readonly n: string;
  /** Its kind, for `ctx.logger`'s bindings; absent in a probe. */
  readonly k?: MessageKind;
  /** Input. */
  readonly i: unknown;
  /** Metadata. */
  readonly md: Metadata;
  /** Cancel slot, and the generation the slot must still hold. */
  readonly c: number;
  readonly g: number;
  /** Metrics slot of the handler, or -1 when the bus keeps no metrics. */
  readonly s: number;
  /** Nesting depth of the call: 0 for a caller's own, one more per handler that made it (see BusDirectory). */
  readonly d: number;
  /** Set for `ready()`'s probe: load and check the export, run nothing. */
  readonly probe?: true;
  /** An event subscriber's name (for `ctx.logger`); absent for commands and queries. */
  readonly sb?: string;
  /** Set for a streaming query: the handler's items go out as {@link StreamChunk}s (see streamProducer.ts). */
  readonly st?: 1;
  /**
   * 1 for a call that can be cancelled: its thread may be terminated over it (past its grace period), so the
   * thread copies the outcomes it holds to shared memory (HeldOutcomes) before it starts it. Every call the
   * pool makes carries it (0 or 1),
   * so all its messages share one shape.
   */
  readonly a?: 0 | 1;
}

/**
 * Several tasks sent as one message (micro-batching): the thread runs them in order and answers with a
 * {@link BatchOutcome}, one outcome per task, in the same order. Column-wise, not an array of
 * {@link TaskMessage}s: structured clone writes every property name of every object, so per-task objects
 * cost ~4x more to post (measured: ~540 vs ~130 ns a task). See batchCodec.ts.
 */
export interface BatchMessage {
  /** The batch's distinct handlers: module index, export, name, kind, metrics slot, and subscriber for events. */
  readonly h: readonly (
    | readonly [m: number, x: string, n: string, k: MessageKind, s: number]
    | readonly [m: number, x: string, n: string, k: MessageKind, s: number, sb: string]
  )[];
  /** Four words per task: its handler's index in `h`, its cancel slot and generation, its nesting depth. */
  readonly w: Int32Array;
  /** Inputs. */
  readonly i: readonly unknown[];
  /** Metadata, `0` for none (most calls carry none: no object to clone). */
  readonly md: readonly (Metadata | 0)[];
  /**
   * Set when the batch leaves a deep backlog behind it (see TaskScheduler.holdFor): how long, in ms, finished
   * calls' outcomes may wait for batch-mates before the thread sends them on. Absent: sent as calls end.
   */
  readonly hold?: number;
}
/** Per task: flags (see batchCodec.ts) and the value, or the serialized error of a failure. */
export interface BatchOutcome {
  /**
   * Each outcome's flags (batchCodec). Outcomes and early outcomes carry plain arrays of small integers, not
   * typed arrays: each typed array that crosses costs a fresh ArrayBuffer on both sides — a backing store,
   * external memory that brings the next GC sooner — and an outcome message goes back per call or two when
   * calls are cancellable (pooled calls under `timeout()` moved a third more with plain arrays).
   */
  readonly f: readonly number[];
  readonly v: readonly unknown[];
  /**
   * Tasks the thread took from the CallBoard after this message, before answering it (their outcomes went
   * early); absent when none. A single task's answer is a BatchOutcome too when it came with such tasks: its
   * own outcome then went early as well.
   */
  readonly b?: number;
}

/**
 * Outcomes of some tasks of a batch still running, sent on the thread's run port as their handlers end (at
 * most every {@link EARLY_FLUSH_MS}), so a call's result does not wait for the rest of its batch. Each task is
 * named by its cancel slot and generation; the batch's own answer then marks those outcomes as sent.
 */
export interface EarlyOutcomes {
  readonly early: true;
  readonly c: readonly number[];
  readonly g: readonly number[];
  readonly o: BatchOutcome;
}
/** How long a thread running a batch holds finished calls' outcomes before it sends them on. */
export const EARLY_FLUSH_MS = 1;

/**
 * A call this long costs far more than one message more: a thread sends its outcome on at once, and with the
 * CallBoard it travels alone unless a deep backlog waits (see TaskScheduler.batchFor).
 */
export const SLOW_CALL_MS = 0.05;

/** Why a task produced no value. */
export type FailureKind =
  /** The handler threw. */
  | 'handler'
  /** The module or its export could not be loaded, or does not handle this name. */
  | 'load'
  /** Cancelled before the handler started: it never ran. */
  | 'cancelled'
  /** The handler returned a value structured clone refuses: it cannot cross back. */
  | 'result';

/** What a thread answers: never a thrown error, which would lose its fields on the way. */
export type TaskOutcome =
  | { readonly ok: true; readonly v: unknown; readonly r?: true; readonly cl?: 1 }
  | { readonly ok: false; readonly k: FailureKind; readonly e: SerializedError; readonly r?: true };
// `r`: the thread counted this call in the metrics region (it won the finish/cancel race), so the main
// thread must not count it again. `cl`: the value is sent with its rows as columns (ResultColumns, see
// resultColumns.ts), rebuilt when the caller takes it (WorkerPool's `unwrap`).

/**
 * Items of a streaming query's task, sent on the thread's run port as the generator yields them (chunked,
 * see streamProducer.ts); the task is named by its cancel slot and generation. The last chunk carries
 * `end`: how the generator ended. It travels after every item, on the same port, so an error is never
 * seen before the items that preceded it — piscina's answer to the task (another port) only says which
 * thread ran it (`v`), so the main thread can tell a chunk that will never come from one still on its way.
 */
export interface StreamChunk {
  readonly sc: number;
  readonly g: number;
  /** The items; empty when they travel as `cols`. */
  readonly v: readonly unknown[];
  /** The items as columns, when they are rows of one shape (itemColumns.ts). */
  readonly cols?: ItemColumns;
  readonly end?: StreamEnd;
}
/** How a stream's generator ended: ran out (or was stopped), threw, or yielded an item that cannot cross. */
export type StreamEnd =
  | { readonly ok: true }
  | { readonly ok: false; readonly k: 'handler' | 'result'; readonly e: SerializedError };

/** A chunk of a nested stream a thread reads (`ctx.queries.stream`): items, or the end (`d`), or its error. */
export type StreamPull =
  | { readonly v: readonly unknown[] }
  | { readonly d: true }
  | { readonly e: SerializedError };

/** Posted once on `parentPort` when a thread starts: its ports for nested dispatch. */
export const HELLO = 'cqrs-pool:hello';
export interface HelloMessage {
  readonly [HELLO]: true;
  readonly threadId: number;
  /** The main thread exposes its buses here with comlink; the thread's `ctx.commands` / `ctx.queries` call it. */
  readonly bus: MessagePort;
  /** The main thread sends nested tasks here to run on the thread that awaits them. */
  readonly run: MessagePort;
}

export interface RunRequest {
  readonly id: number;
  readonly task: TaskMessage;
}
export interface RunResponse {
  readonly id: number;
  readonly outcome: TaskOutcome;
}

/** What the main thread exposes to threads over comlink. */
export interface NestedDispatchApi {
  dispatch(
    kind: MessageKind,
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
  ): Promise<TaskOutcome>;
  /**
   * `ctx.events.publish` of a thread: an ok outcome's value is a {@link WireReport}. `checked`: the thread
   * was given the event's definition and validated the payload with it (see `EventBus.publishNested`).
   */
  publish(
    name: string,
    payload: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
    strategy: PublishStrategy | undefined,
    checked: boolean,
  ): Promise<TaskOutcome>;
  /**
   * `ctx.queries.stream` of a thread: opens the stream on the main thread's query bus (it starts with the
   * first pull) and answers its id; never rejects (a refusal comes with the first pull).
   */
  openStream(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
    highWaterMark: number,
  ): Promise<number>;
  /** The next items of stream `id` (at most `max`, at least one), or its end, or its error. */
  pullStream(id: number, max: number): Promise<StreamPull>;
  /** Stops stream `id` (`aborted`: the thread's signal aborted it) and resolves once it has ended. */
  closeStream(id: number, aborted: boolean): Promise<void>;
}

/** A publish report on its way to a thread: each failure's error as plain data. */
export interface WireReport {
  readonly event: string;
  readonly delivered: readonly string[];
  readonly failed: readonly { readonly subscriber: string; readonly error: SerializedError }[];
}

/** `workerData` of every pool thread. */
export interface PoolWorkerData {
  readonly modules: SharedArrayBuffer;
  readonly cancel: SharedArrayBuffer;
  /** Per cancel slot, the time its task started (CancelFlags.ts). */
  readonly cancelTimes: SharedArrayBuffer;
  /** Streaming queries' credit words, by cancel slot (see StreamCredits.ts). */
  readonly credits: SharedArrayBuffer;
  readonly metrics: SharedArrayBuffer;
  /** The threads' busy time (BusyTime.ts). */
  readonly busy: SharedArrayBuffer;
  /** `maxDepth`: the deepest nesting of a value the thread sends (results, nested inputs, errors). */
  readonly maxDepth: number;
  /** The CallBoard (CallBoard.ts), where waiting calls are pinned for the first thread free; absent when off. */
  readonly board?: SharedArrayBuffer;
  /** Where threads copy the outcomes they hold before a call they may be terminated over (HeldOutcomes.ts). */
  readonly held?: SharedArrayBuffer;
  /** `threadLogger`: its module's index in the module table and the export to use; absent when not set. */
  readonly logger?: { readonly m: number; readonly x: string };
  /**
   * `idleWait: 'block'`: the thread's event loop does not run while it waits for a task, so an error a
   * handler left behind (a timer, a rejected promise) surfaces during some later task. The thread then
   * catches it, reports it ({@link THREAD_ERROR}) and retires before its next task (which is sent again).
   */
  readonly guard: boolean;
}

/** Posted on `parentPort` by a thread that caught an error thrown outside any handler's call. */
export const THREAD_ERROR = 'cqrs-pool:thread-error';
export interface ThreadErrorMessage {
  readonly [THREAD_ERROR]: SerializedError;
}

/** Posted on `parentPort` by a thread whose `threadLogger` could not be loaded. */
export const LOGGER_FAILED = 'cqrs-pool:logger-failed';
export interface LoggerFailedMessage {
  readonly [LOGGER_FAILED]: SerializedError;
}
