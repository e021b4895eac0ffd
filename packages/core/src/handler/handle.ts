import type {
  Definition,
  ItemOf,
  ParsedInputOf,
  ResultOf,
  StreamQueryDefinition,
} from '../messages/Definition.js';
import type { HandlerContext } from './HandlerContext.js';

/** A handler function for definition `D` (a streaming query's is a {@link StreamHandlerFn}). */
export type HandlerFn<D extends Definition> = (
  input: ParsedInputOf<D>,
  ctx: HandlerContext,
) => ResultOf<D> | Promise<ResultOf<D>>;

/**
 * The handler of a streaming query: an async generator (`async function* (input, ctx) { … yield item; }`),
 * or any function returning an async or sync iterable of its items.
 */
export type StreamHandlerFn<D extends StreamQueryDefinition> = (
  input: ParsedInputOf<D>,
  ctx: HandlerContext,
) => AsyncIterable<ItemOf<D>> | Iterable<ItemOf<D>>;

// A registry symbol, so the thread entry recognises handlers made by any copy of this module.
const brand = Symbol.for('cqrs-pool.handle');

/** A handler exported from a worker module, made by {@link handle}. */
export interface WorkerHandler<D extends Definition = Definition> {
  readonly [brand]: true;
  /** The name of the definition it handles; the pool checks it against the registration. */
  readonly name: D['name'];
  readonly kind: D['kind'];
  readonly fn: HandlerFn<D>;
}

/**
 * Marks `fn` as the handler of `definition` inside a worker module. Export the result and register it on the
 * main thread with `inWorker(moduleUrl, exportName)`. For a streaming query (`defineStreamQuery`), `fn` is an
 * async generator function whose items are typed by the definition's `item`.
 */
export function handle<D extends StreamQueryDefinition>(
  definition: D,
  fn: StreamHandlerFn<D>,
): WorkerHandler<D>;
export function handle<D extends Definition>(definition: D, fn: HandlerFn<D>): WorkerHandler<D>;
export function handle<D extends Definition>(definition: D, fn: HandlerFn<D>): WorkerHandler<D> {
  return Object.freeze({ [brand]: true as const, name: definition.name, kind: definition.kind, fn });
}

/** @internal */
export function isWorkerHandler(value: unknown): value is WorkerHandler {
  return typeof value === 'object' && value !== null && (value as { [brand]?: unknown })[brand] === true;
}
