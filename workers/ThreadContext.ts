import type { Remote } from 'comlink/dist/esm/comlink.mjs';
import { CqrsError, isCqrsError } from '../packages/core/src/errors/CqrsError.js';
import { deserializeError } from '../packages/core/src/errors/serialize.js';
import { badExecuteOptions, badPublishOptions } from '../packages/core/src/handler/badExecuteOptions.js';
import type { EventClient, PublishOptions, PublishReport } from '../packages/core/src/handler/EventClient.js';
import type {
  BusClient,
  ExecuteOptions,
  HandlerContext,
  Metadata,
  QueryClient,
  StreamOptions,
} from '../packages/core/src/handler/HandlerContext.js';
import type { Logger } from '../packages/core/src/handler/Logger.js';
import { handlerLogger } from '../packages/core/src/handler/Logger.js';
import { badStreamOptions, highWaterMarkOf } from '../packages/core/src/handler/streamOptions.js';
import type { Definition, EventDefinition, MessageKind } from '../packages/core/src/messages/Definition.js';
import { invalid, parseValue } from '../packages/core/src/middleware/validation.js';
import type {
  NestedDispatchApi,
  TaskMessage,
  TaskOutcome,
  WireReport,
} from '../packages/core/src/pool/protocol.js';
import { exceedsDepth } from '../packages/core/src/pool/valueDepth.js';
import type { CancelFlagsView } from '../packages/core/src/shared/CancelFlags.js';
import { liveWord, STARTED } from '../packages/core/src/shared/CancelFlags.js';
import { raceAbort } from '../packages/core/src/util/abortError.js';
import { ThreadStream } from './ThreadStream.js';

/** `ctx` of a handler running in a pool thread. */
export class ThreadContext implements HandlerContext {
  private controller: AbortController | undefined;
  private finished = false;
  private ownLogger: Logger | undefined;
  private ownCommands: BusClient<'command'> | undefined;
  private ownQueries: QueryClient | undefined;
  /** Streams this handler opened and has not finished reading. */
  private readonly streams = new Set<ThreadStream>();
  private ownEvents: EventClient | undefined;
  readonly name: string;
  readonly kind: MessageKind;
  readonly subscriber: string | undefined;
  readonly metadata: Metadata;

  constructor(
    private readonly task: TaskMessage,
    private readonly flags: CancelFlagsView,
    private readonly mainBuses: Remote<NestedDispatchApi>,
    private readonly threadId: number,
    /** The pool's `threadLogger`, or the no-op logger. */
    private readonly baseLogger: Logger,
    /** The pool's `maxDepth`: the deepest value a nested call may send to the main thread. */
    private readonly maxDepth: number,
  ) {
    this.name = task.n;
    // Absent only in `ready()`'s probe, which runs no handler.
    this.kind = task.k ?? 'command';
    this.subscriber = task.sb;
    this.metadata = task.md;
  }

  /** Made on first use, like `queries`: most handlers dispatch nothing, and every call makes a context. */
  get commands(): BusClient<'command'> {
    this.ownCommands ??= nestedClient('command', this.mainBuses, this.task, this.threadId, this.maxDepth);
    return this.ownCommands;
  }

  get queries(): QueryClient {
    if (this.ownQueries === undefined) {
      const { execute } = nestedClient('query', this.mainBuses, this.task, this.threadId, this.maxDepth);
      const stream = streamClient(this.mainBuses, this.task, this.threadId, this.maxDepth, this.streams);
      this.ownQueries = { execute, stream } as QueryClient;
    }
    return this.ownQueries;
  }

  get events(): EventClient {
    this.ownEvents ??= eventClient(this.mainBuses, this.task, this.threadId, this.maxDepth);
    return this.ownEvents;
  }

  isCancelled(): boolean {
    return this.flags.isCancelled(this.task.c, this.task.g);
  }

  /**
   * Made on first use: most handlers never look at it. It waits on the task's shared flag word with
   * `Atomics.waitAsync`, which the main thread notifies when it cancels or recycles the slot.
   */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const controller = new AbortController();
      this.controller = controller;
      const live = liveWord(this.task.g) | STARTED;
      const wait = Atomics.waitAsync(this.flags.words, this.task.c, live);
      const check = (): void => {
        if (!this.finished && this.isCancelled())
          controller.abort(new CqrsError('ABORTED', 'the call was cancelled'));
      };
      if (wait.async) void wait.value.then(check);
      else check();
    }
    return this.controller.signal;
  }

  /** Made on first read: most handlers never log. */
  get logger(): Logger {
    this.ownLogger ??= handlerLogger(
      this.baseLogger,
      this.task.n,
      this.task.k ?? '',
      this.task.md,
      this.task.sb,
    );
    return this.ownLogger;
  }

  /**
   * @internal Called when the handler has settled: a late wake-up must not abort a finished task's signal,
   * and a nested stream it left unread must not run on for nobody.
   */
  finish(): void {
    this.finished = true;
    for (const stream of [...this.streams]) void stream.return();
  }
}

function nestedClient(
  kind: MessageKind,
  mainBuses: Remote<NestedDispatchApi>,
  parent: TaskMessage,
  threadId: number,
  maxDepth: number,
): BusClient<typeof kind> {
  const execute = async (
    target: Definition | string,
    input: unknown,
    options?: ExecuteOptions,
  ): Promise<unknown> => {
    const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
    const bad = badExecuteOptions(options);
    if (bad !== undefined) throw new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name });
    const metadata = options?.metadata === undefined ? parent.md : { ...parent.md, ...options.metadata };
    // The main thread could not decode it: the message would be dropped, and this call never settle.
    if (exceedsDepth(input, maxDepth) || exceedsDepth(metadata, maxDepth)) {
      throw new CqrsError(
        'NOT_CLONEABLE',
        `${name}: the input is nested deeper than ${maxDepth} levels (WorkerPool maxDepth) and cannot cross to the main thread`,
        { handler: name },
      );
    }
    const signal = options?.signal;
    let outcome: TaskOutcome;
    try {
      const pending: Promise<TaskOutcome> = mainBuses.dispatch(
        kind,
        name,
        input,
        metadata,
        threadId,
        parent.d + 1,
      );
      outcome = signal === undefined ? await pending : await raceAbort(pending, signal, name);
    } catch (err) {
      if (isCqrsError(err)) throw err;
      // comlink could not post the input, or the main thread could not post the result back.
      if (isCloneFailure(err))
        throw new CqrsError('NOT_CLONEABLE', `${name}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    if (outcome.ok) return outcome.v;
    throw deserializeError(outcome.e);
  };
  return { execute } as BusClient<typeof kind>;
}

/** `ctx.queries.stream` of a thread: a {@link ThreadStream} over the main thread's query bus. */
function streamClient(
  mainBuses: Remote<NestedDispatchApi>,
  parent: TaskMessage,
  threadId: number,
  maxDepth: number,
  streams: Set<ThreadStream>,
): QueryClient['stream'] {
  return ((target: Definition | string, input: unknown, options?: StreamOptions): ThreadStream => {
    const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
    const bad = badStreamOptions(options);
    const metadata =
      bad !== undefined || options?.metadata === undefined
        ? parent.md
        : { ...parent.md, ...options.metadata };
    const highWaterMark = bad === undefined ? highWaterMarkOf(options) : 1;
    const open = async (): Promise<number> => {
      if (bad !== undefined) throw new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name });
      // The main thread could not decode it: the message would be dropped, and the stream never start.
      if (exceedsDepth(input, maxDepth) || exceedsDepth(metadata, maxDepth)) {
        throw new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the input is nested deeper than ${maxDepth} levels (WorkerPool maxDepth) and cannot cross to the main thread`,
          { handler: name },
        );
      }
      try {
        return await mainBuses.openStream(name, input, metadata, threadId, parent.d + 1, highWaterMark);
      } catch (err) {
        if (isCloneFailure(err))
          throw new CqrsError('NOT_CLONEABLE', `${name}: ${(err as Error).message}`, { cause: err });
        throw err;
      }
    };
    return new ThreadStream(
      mainBuses,
      open,
      name,
      highWaterMark,
      bad === undefined ? options?.signal : undefined,
      streams,
    );
  }) as QueryClient['stream'];
}

/** `ctx.events` of a thread: publishes on the main thread's event bus, as `nestedClient` executes. */
function eventClient(
  mainBuses: Remote<NestedDispatchApi>,
  parent: TaskMessage,
  threadId: number,
  maxDepth: number,
): EventClient {
  const publish = async (
    target: Definition | string,
    payload: unknown,
    options?: PublishOptions,
  ): Promise<PublishReport> => {
    const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
    const bad = badPublishOptions(options);
    if (bad !== undefined) throw new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name });
    const metadata = options?.metadata === undefined ? parent.md : { ...parent.md, ...options.metadata };
    if (exceedsDepth(payload, maxDepth) || exceedsDepth(metadata, maxDepth)) {
      throw new CqrsError(
        'NOT_CLONEABLE',
        `${name}: the payload is nested deeper than ${maxDepth} levels (WorkerPool maxDepth) and cannot cross to the main thread`,
        { handler: name },
      );
    }
    // Only the name crosses to the main thread, which has no schema for an event nobody subscribed to
    // there: a definition's payload is validated here, so such a publish fails or succeeds as it would on
    // the main thread. The main thread validates again, with its own copy, when it has subscribers.
    const checked = typeof target === 'object' && target !== null;
    if (checked) {
      const parsed = parseValue((target as EventDefinition).payload, payload, name, 'payload');
      if (parsed instanceof Promise) await parsed;
      else if (!parsed.success) throw invalid(name, 'payload', parsed.error.issues);
    }
    const signal = options?.signal;
    let outcome: TaskOutcome;
    try {
      const pending: Promise<TaskOutcome> = mainBuses.publish(
        name,
        payload,
        metadata,
        threadId,
        parent.d + 1,
        options?.strategy,
        checked,
      );
      outcome = signal === undefined ? await pending : await raceAbort(pending, signal, name);
    } catch (err) {
      if (isCqrsError(err)) throw err;
      if (isCloneFailure(err))
        throw new CqrsError('NOT_CLONEABLE', `${name}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    if (!outcome.ok) throw deserializeError(outcome.e);
    const wire = outcome.v as WireReport;
    return {
      event: wire.event,
      delivered: wire.delivered,
      failed: wire.failed.map((f) => ({
        subscriber: f.subscriber,
        error: deserializeError(f.error) as CqrsError,
      })),
    };
  };
  return { publish } as EventClient;
}

function isCloneFailure(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown } | null;
  return e?.name === 'DataCloneError' || e?.message === 'Unserializable return value';
}
