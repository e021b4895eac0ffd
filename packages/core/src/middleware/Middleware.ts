import type { OrderTicket } from '../bus/KeyOrder.js';
import type { StreamSink } from '../bus/StreamSink.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { Definition, MessageKind } from '../messages/Definition.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import type { CancelToken } from '../util/CancelToken.js';

/**
 * One call as middleware sees it. Middleware passes a changed copy on (`next({ ...call, signal })`), never
 * mutates it. Every field is always present (some `undefined`): V8 copies an object fast when the spread
 * only overrides existing keys, and about thirty times slower when it adds one.
 */
export interface Call {
  readonly name: string;
  readonly kind: MessageKind;
  readonly input: unknown;
  readonly metadata: Metadata;
  /** The caller's signal (or one a middleware derived from it); aborting it settles the call. */
  readonly signal: AbortSignal | undefined;
  /** The registered definition, with its schemas. */
  readonly definition: Definition;
  /** Set on a nested call made by a handler in a pool thread: that thread, which runs worker handlers of the call. */
  readonly originThread: number | undefined;
  /**
   * How deep in a chain of nested calls this one is: 0 for a caller's own call, one more for each handler
   * between (a call made through `ctx.commands` / `ctx.queries` of a depth-0 handler has depth 1). The pool's
   * `maxNestingDepth` bounds it.
   */
  readonly depth: number;
  /** Overrides the pool's `cancelGraceMs` for this call: how long a cancelled worker handler may run before its thread is terminated. */
  readonly cancelGraceMs: number | undefined;
  /**
   * @internal Set by `timeout()`: a cheap cancellation that also follows the caller's signal. Code inside a
   * timeout that only needs to know about aborts reads it (util/callAbort.ts); `signal` is then made on
   * first read.
   */
  readonly cancel: CancelToken | undefined;
  /**
   * @internal The call's place in the lane of its ordering key (handlers registered with `orderingKey`): the
   * terminal waits for its turn before running the handler, and reports when the handler ends.
   */
  readonly order: OrderTicket | undefined;
  /** @internal Set by the metrics layer: claimed by the handler's terminal, which counts each attempt itself; the layer counts a pass nobody claimed. */
  readonly ticket: CallTicket | undefined;
  /**
   * Set for a `stream()` call (a streaming query): the stream's buffer, where the handler's items go. The
   * call settles when the stream ends (its result is `undefined`); `stream.delivered` counts the items that
   * reached the consumer so far. Undefined for every other call. (Optional in the type only, so calls built
   * by hand in tests need not name it; the buses always set it.)
   */
  readonly stream?: StreamSink | undefined;
}

/** @internal One attempt's claim on its metrics record. */
export interface CallTicket {
  claimed: boolean;
  /**
   * The promise a middleware returned for a call it settled and counted at once (a cache hit). When the
   * chain hands back this very promise, the bus ends the call without waiting on it (no continuation).
   */
  settledBy: Promise<unknown> | undefined;
}

/** The rest of the chain, down to the handler. */
export type Next = (call: Call) => Promise<unknown>;

/**
 * Wraps the rest of the chain: `(next) => (call) => …`. Applied once per handler, at registration, with the
 * handler it wraps as the second argument (most middleware ignore it).
 */
export type Middleware = (next: Next, chain: ChainContext) => Next;

/** The handler a middleware is being composed for. */
export interface ChainContext {
  /** The handler's name: the message's, or `<event>:<subscriber>` for an event subscriber. */
  readonly name: string;
  readonly kind: MessageKind;
  readonly definition: Definition;
  /** The event subscriber's name (`definition.name` is its event); absent for commands and queries. */
  readonly subscriber?: string;
  /** @internal Shared-memory state for the built-in middleware (breaker, limiter). */
  readonly shared: SharedSlots;
}

/** @internal Slots in the pool's (or the bus's) shared region, allocated on first use. */
export interface SharedSlots {
  readonly region: MetricsRegion;
  /** This handler's slot: its counters, breaker line and limiter word. */
  handlerSlot(): number;
  /** One slot for the whole bus, for state shared by all its handlers (a bus-wide rate limit). */
  busSlot(): number;
}
