import type { Middleware } from './Middleware.js';

const marker = Symbol.for('cqrs-pool.queryOnly');

/**
 * Marks a middleware as meaningful for queries only (caching: a command's result must never be served from
 * a cache). A CommandBus refuses it at construction or registration with `INVALID_REGISTRATION`.
 * @internal
 */
export function queryOnly<M extends Middleware>(middleware: M, label: string): M {
  return Object.assign(middleware, { [marker]: label });
}

/** The label of a query-only middleware, or undefined. @internal */
export function queryOnlyLabel(middleware: Middleware): string | undefined {
  const label = (middleware as Middleware & { [marker]?: unknown })[marker];
  return typeof label === 'string' ? label : undefined;
}
