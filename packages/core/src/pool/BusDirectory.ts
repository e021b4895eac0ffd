import { QueryStream } from '../bus/QueryStream.js';
import { CqrsError } from '../errors/CqrsError.js';
import { serializeError } from '../errors/serialize.js';
import { badExecuteOptions, badPublishOptions } from '../handler/badExecuteOptions.js';
import type { EventClient, PublishOptions, PublishReport, PublishStrategy } from '../handler/EventClient.js';
import type {
  BusClient,
  ExecuteOptions,
  Metadata,
  QueryClient,
  StreamOptions,
} from '../handler/HandlerContext.js';
import { badStreamOptions } from '../handler/streamOptions.js';
import type { Definition, EventDefinition, MessageKind } from '../messages/Definition.js';
import { NestedStreams } from './NestedStreams.js';
import type { NestedDispatchApi, StreamPull, TaskOutcome, WireReport } from './protocol.js';
import { DEFAULT_MAX_DEPTH, exceedsDepth } from './valueDepth.js';

/** What a bus offers to nested callers. @internal */
export interface NestedTarget {
  readonly kind: MessageKind;
  executeNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal?: AbortSignal,
  ): Promise<unknown>;
  /** A nested stream (options checked, metadata merged by the caller); it starts at its first `next()`. */
  streamNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    options: StreamOptions | undefined,
  ): QueryStream;
}

/** What an event bus offers to nested publishers. @internal */
export interface NestedPublisher {
  publishNested(
    target: EventDefinition | string,
    payload: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal: AbortSignal | undefined,
    strategy: PublishStrategy | undefined,
    checked: boolean,
  ): Promise<PublishReport>;
}

/** The deepest chain of nested calls, by default (`WorkerPool`'s `maxNestingDepth`). @internal */
export const DEFAULT_MAX_NESTING_DEPTH = 32;

/** Limits of a {@link BusDirectory}, from its pool's options. @internal */
export interface DirectoryLimits {
  /** The deepest nesting of a value sent back to a thread. */
  readonly maxDepth: number;
  /** The deepest chain of nested calls: a call at a greater depth is refused with `NESTING_TOO_DEEP`. */
  readonly maxNestingDepth: number;
}

/**
 * The buses that share one pool, one per kind: the targets of `ctx.commands` / `ctx.queries` /
 * `ctx.events`, for inline handlers directly and for pool threads over comlink. The first bus of each kind
 * attached wins.
 *
 * Every nested call passes here, so this is where a chain of them is bounded: a handler that calls itself
 * (directly or round a cycle) would otherwise go on until some other limit gave way, thousands of levels
 * down, its error wrapped once per level.
 * @internal
 */
export class BusDirectory implements NestedDispatchApi {
  private readonly targets: { command?: NestedTarget; query?: NestedTarget } = {};
  private publisher: NestedPublisher | undefined;
  private readonly limits: DirectoryLimits;
  /** Streams pool threads read, by id. */
  private readonly streams: NestedStreams;

  constructor(limits: Partial<DirectoryLimits> = {}) {
    this.limits = {
      maxDepth: limits.maxDepth ?? DEFAULT_MAX_DEPTH,
      maxNestingDepth: limits.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH,
    };
    this.streams = new NestedStreams(this.limits.maxDepth);
  }

  attach(target: NestedTarget): void {
    if (target.kind === 'event') return;
    this.targets[target.kind] ??= target;
  }

  detach(target: NestedTarget): void {
    if (target.kind === 'event') return;
    if (this.targets[target.kind] === target) delete this.targets[target.kind];
  }

  attachPublisher(publisher: NestedPublisher): void {
    this.publisher ??= publisher;
  }

  detachPublisher(publisher: NestedPublisher): void {
    if (this.publisher === publisher) this.publisher = undefined;
  }

  /** Serves a pool thread's nested call; answers plain data no deeper than the thread can decode, never throws. */
  async dispatch(
    kind: MessageKind,
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
  ): Promise<TaskOutcome> {
    let outcome: TaskOutcome;
    try {
      const value = await this.nested(kind, name, input, metadata, originThread, depth, undefined);
      outcome = { ok: true, v: value };
    } catch (err) {
      outcome = { ok: false, k: 'handler', e: serializeError(err) };
    }
    return this.deliverable(outcome, name);
  }

  /**
   * Serves a pool thread's `ctx.events.publish`: the report with every failure as plain data (the thread
   * rebuilds them as `CqrsError`s), or the refusal; never throws.
   */
  async publish(
    name: string,
    payload: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
    strategy: PublishStrategy | undefined,
    checked: boolean,
  ): Promise<TaskOutcome> {
    let outcome: TaskOutcome;
    try {
      const report = await this.nestedPublish(
        name,
        payload,
        metadata,
        originThread,
        depth,
        undefined,
        strategy,
        checked === true,
      );
      const wire: WireReport = {
        event: report.event,
        delivered: report.delivered,
        failed: report.failed.map((f) => ({ subscriber: f.subscriber, error: serializeError(f.error) })),
      };
      outcome = { ok: true, v: wire };
    } catch (err) {
      outcome = { ok: false, k: 'handler', e: serializeError(err) };
    }
    return this.deliverable(outcome, name);
  }

  /** Opens a pool thread's `ctx.queries.stream`; a refusal surfaces at its first pull. Never rejects. */
  async openStream(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number,
    depth: number,
    highWaterMark: number,
  ): Promise<number> {
    const controller = new AbortController();
    const options = { signal: controller.signal, highWaterMark };
    return this.streams.add(
      this.nestedStream(name, input, metadata, originThread, depth, options),
      controller,
      originThread,
      name,
    );
  }

  /** The next chunk of a thread's stream; never rejects. */
  pullStream(id: number, max: number): Promise<StreamPull> {
    return this.streams.pull(id, max);
  }

  /** Stops a thread's stream; resolves once it ended. */
  closeStream(id: number, aborted: boolean): Promise<void> {
    return this.streams.close(id, aborted);
  }

  /** A pool thread exited: the streams it was reading are stopped. @internal */
  threadGone(threadId: number): void {
    this.streams.threadGone(threadId);
  }

  /** `outcome`, or NOT_CLONEABLE when it is nested too deep for the thread to decode. */
  private deliverable(outcome: TaskOutcome, name: string): TaskOutcome {
    // A value the thread could not decode would be dropped on its way, and the nested call never settle.
    const tooDeep = exceedsDepth(outcome.ok ? outcome.v : outcome.e, this.limits.maxDepth);
    if (!tooDeep) return outcome;
    const what = outcome.ok ? 'result' : 'error';
    return {
      ok: false,
      k: 'handler',
      e: serializeError(
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the ${what} is nested deeper than ${this.limits.maxDepth} levels (WorkerPool maxDepth) and cannot cross to the thread`,
          { handler: name },
        ),
      ),
    };
  }

  /** `ctx.commands` / `ctx.queries` of an inline handler: nested calls inherit the caller's metadata and origin. */
  client<K extends MessageKind>(
    kind: K,
    parentMetadata: Metadata,
    originThread: number | undefined,
    depth: number,
  ): BusClient<K> {
    const execute = (
      target: Definition | string,
      input: unknown,
      options?: ExecuteOptions,
    ): Promise<unknown> => {
      const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
      const bad = badExecuteOptions(options);
      if (bad !== undefined) {
        return Promise.reject(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
      }
      const metadata =
        options?.metadata === undefined ? parentMetadata : { ...parentMetadata, ...options.metadata };
      try {
        return this.nested(kind, name, input, metadata, originThread, depth, options?.signal);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return { execute } as BusClient<K>;
  }

  /** `ctx.queries` of an inline handler: {@link client}, and `stream`. */
  queryClient(parentMetadata: Metadata, originThread: number | undefined, depth: number): QueryClient {
    const { execute } = this.client('query', parentMetadata, originThread, depth);
    const stream = (target: Definition | string, input: unknown, options?: StreamOptions): QueryStream => {
      const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
      const bad = badStreamOptions(options);
      const metadata =
        bad !== undefined || options?.metadata === undefined
          ? parentMetadata
          : { ...parentMetadata, ...options.metadata };
      // A bad option is reported as `stream()` reports it: at the first `next()`.
      return this.nestedStream(name, input, metadata, originThread, depth, options);
    };
    return { execute, stream } as QueryClient;
  }

  /** A nested stream at `depth`; a refusal (no query bus, too deep) surfaces at its first `next()`. */
  private nestedStream(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    options: StreamOptions | undefined,
  ): QueryStream {
    const target = this.targets.query;
    try {
      if (target === undefined) {
        throw new CqrsError('HANDLER_NOT_FOUND', `${name}: no query bus shares this pool`, { handler: name });
      }
      this.checkDepth(name, depth);
    } catch (err) {
      return new QueryStream(() => Promise.reject(err), 1, undefined);
    }
    return target.streamNested(name, input, metadata, originThread, depth, options);
  }

  /** `ctx.events` of an inline handler: nested publishes inherit the caller's metadata and origin. */
  eventClient(parentMetadata: Metadata, originThread: number | undefined, depth: number): EventClient {
    const publish = (
      target: Definition | string,
      payload: unknown,
      options?: PublishOptions,
    ): Promise<PublishReport> => {
      const name = typeof target === 'string' ? target : String((target as Definition | null)?.name);
      const bad = badPublishOptions(options);
      if (bad !== undefined) {
        return Promise.reject(new CqrsError('VALIDATION', `${name}: ${bad}`, { handler: name }));
      }
      const metadata =
        options?.metadata === undefined ? parentMetadata : { ...parentMetadata, ...options.metadata };
      try {
        // The definition itself, when given: the bus then publishes it as `publish(definition, …)` would.
        const event = typeof target === 'string' ? target : (target as EventDefinition);
        return this.nestedPublish(
          event,
          payload,
          metadata,
          originThread,
          depth,
          options?.signal,
          options?.strategy,
          false,
        );
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return { publish } as EventClient;
  }

  /** A nested publish at `depth`, refused past the limit. Throws for a refusal before the bus took it. */
  private nestedPublish(
    target: EventDefinition | string,
    payload: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal: AbortSignal | undefined,
    strategy: PublishStrategy | undefined,
    checked: boolean,
  ): Promise<PublishReport> {
    const name = typeof target === 'string' ? target : String(target.name);
    const publisher = this.publisher;
    if (publisher === undefined) {
      throw new CqrsError('HANDLER_NOT_FOUND', `${name}: no event bus shares this pool`, { handler: name });
    }
    this.checkDepth(name, depth);
    return publisher.publishNested(target, payload, metadata, originThread, depth, signal, strategy, checked);
  }

  private checkDepth(name: string, depth: number): void {
    if (depth > this.limits.maxNestingDepth) {
      throw new CqrsError(
        'NESTING_TOO_DEEP',
        `${name}: nested deeper than ${this.limits.maxNestingDepth} levels (WorkerPool maxNestingDepth): a handler calling itself, or a cycle of handlers?`,
        { handler: name },
      );
    }
  }

  /** A nested call at `depth`, refused past the limit. Throws for a refusal before any bus took the call. */
  private nested(
    kind: MessageKind,
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    depth: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const target = kind === 'event' ? undefined : this.targets[kind];
    if (target === undefined) {
      throw new CqrsError('HANDLER_NOT_FOUND', `${name}: no ${kind} bus shares this pool`, { handler: name });
    }
    this.checkDepth(name, depth);
    return target.executeNested(name, input, metadata, originThread, depth, signal);
  }
}
