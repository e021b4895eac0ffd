import type { Middleware } from './Middleware.js';

const marker = Symbol.for('cqrs-pool.metrics');

/**
 * Places the shared-memory metrics recording at this point of the chain (by default, with the bus option
 * `metrics: true`, it is the outermost layer). Calls refused by middleware outside it are not counted;
 * calls refused inside it count as an execution and a failure. Only the first `metrics()` of a chain
 * records; it turns recording on even where the bus has `metrics: false`.
 */
export function metrics(): Middleware {
  const placeholder: Middleware = (next) => next;
  return Object.assign(placeholder, { [marker]: true });
}

/** @internal */
export function isMetricsPlacement(middleware: Middleware): boolean {
  return (middleware as Middleware & { [marker]?: unknown })[marker] === true;
}
