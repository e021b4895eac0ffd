import type {
  Definition,
  InputOf,
  ItemOf,
  MessageKind,
  ResultOf,
  StreamQueryDefinition,
} from '../messages/Definition.js';
import type { EventClient } from './EventClient.js';
import type { Logger } from './Logger.js';

/** A read-only string map that travels with a call: correlation id, user, tenant, … */
export type Metadata = Readonly<Record<string, string>>;

/** Options of `execute`. */
export interface ExecuteOptions {
  /** Aborting it settles the call with `ABORTED` at once and cancels the handler. */
  signal?: AbortSignal;
  /** Handed to middleware (`call.metadata`) and to the handler (`ctx.metadata`). */
  metadata?: Metadata;
}

/** Options of `stream`: those of `execute`, and how far ahead of the consumer the producer may get. */
export interface StreamOptions extends ExecuteOptions {
  /**
   * Most items the handler may produce beyond what the consumer has taken (an integer 1 … 1,048,576): the
   * generator is paused at its `yield` when it is that far ahead, so a slow consumer bounds the memory of
   * both sides. Default 1024.
   */
  highWaterMark?: number;
}

/** The face of a bus a handler sees through `ctx.commands` / `ctx.queries`. */
export interface BusClient<K extends MessageKind> {
  /** Executes a nested call through the bus and its middleware; metadata defaults to the calling handler's. */
  execute<D extends Definition<K>>(
    definition: D,
    input: InputOf<D>,
    options?: ExecuteOptions,
  ): Promise<ResultOf<D>>;
  execute(name: string, input: unknown, options?: ExecuteOptions): Promise<unknown>;
}

/** `ctx.queries`: executes queries, and streams streaming queries (see `QueryBus.stream`). */
export interface QueryClient extends BusClient<'query'> {
  /**
   * Streams a streaming query through the bus and its middleware; metadata defaults to the calling handler's.
   * In a pool thread the items come over from the main thread in chunks, pulled as this iterator is read.
   */
  stream<D extends StreamQueryDefinition>(
    definition: D,
    input: InputOf<D>,
    options?: StreamOptions,
  ): AsyncIterableIterator<ItemOf<D>>;
  stream(name: string, input: unknown, options?: StreamOptions): AsyncIterableIterator<unknown>;
}

/** What every handler receives beside its input, inline or in a pool thread. */
export interface HandlerContext {
  /** The name of the message being handled: lets one function serve several definitions (a forwarder). */
  readonly name: string;
  /** Its kind, `'command'`, `'query'` or `'event'` (an event subscriber: `name` is the event's). */
  readonly kind: MessageKind;
  /** The event subscriber this call runs for (one function can serve several); undefined for commands and queries. */
  readonly subscriber: string | undefined;
  /** Aborts when the caller aborts or a timeout fires. */
  readonly signal: AbortSignal;
  /** Reads the cancellation flag from shared memory: cheap enough to poll inside a synchronous CPU loop. */
  isCancelled(): boolean;
  /** The call's metadata. */
  readonly metadata: Metadata;
  /** The command bus that shares this pool (in a thread: a comlink proxy to the main thread's bus). */
  readonly commands: BusClient<'command'>;
  /** The query bus that shares this pool (in a thread: a comlink proxy to the main thread's bus). */
  readonly queries: QueryClient;
  /** The event bus that shares this pool (in a thread: a comlink proxy to the main thread's bus). */
  readonly events: EventClient;
  /**
   * A pino-style logger whose every line carries `{ handler, kind, subscriber?, correlationId? }`
   * (`subscriber` for an event subscriber, `correlationId` from `metadata.correlationId`): a child of the
   * bus's `logger` option inline, of the pool's `threadLogger` in a thread. Made on first read. A no-op
   * logger when none is configured.
   */
  readonly logger: Logger;
}
