import type { Metadata } from '../handler/HandlerContext.js';
import type { Definition, MessageKind } from '../messages/Definition.js';

/** One call as middleware sees it. Middleware passes a changed copy on (`next({ ...call, signal })`), never mutates it. */
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
  readonly originThread?: number;
  /** Overrides the pool's `cancelGraceMs` for this call: how long a cancelled worker handler may run before its thread is terminated. */
  readonly cancelGraceMs?: number;
}

/** The rest of the chain, down to the handler. */
export type Next = (call: Call) => Promise<unknown>;

/** Wraps the rest of the chain: `(next) => (call) => …`. Applied once, at registration. */
export type Middleware = (next: Next) => Next;
