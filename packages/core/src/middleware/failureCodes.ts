import type { ErrorCode } from '../errors/codes.js';
import type { Middleware } from './Middleware.js';

const marker = Symbol.for('cqrs-pool.failureCodes');

/**
 * Marks a built-in middleware with the error codes it refuses calls with, so a handler's failure series can
 * exist at zero from the start for every code its chain can produce (`@cqrs-pool/prometheus`).
 * @internal
 */
export function producesCodes<M extends Middleware>(middleware: M, codes: readonly ErrorCode[]): M {
  return Object.assign(middleware, { [marker]: codes });
}

/** The codes a middleware was marked with (none for an unmarked one). @internal */
export function failureCodesOf(middleware: Middleware): readonly ErrorCode[] {
  const codes = (middleware as Middleware & { [marker]?: unknown })[marker];
  return Array.isArray(codes) ? (codes as ErrorCode[]) : [];
}
