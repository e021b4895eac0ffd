import type { ChainContext, Middleware, Next } from './Middleware.js';

/**
 * Builds one function from a middleware list around `terminal`: the first middleware is the outermost, so it
 * sees the call first and the result last. Done once per handler at registration, never per call.
 * @internal
 */
export function compose(middleware: readonly Middleware[], terminal: Next, chain: ChainContext): Next {
  let next = terminal;
  for (let i = middleware.length - 1; i >= 0; i--) {
    next = (middleware[i] as Middleware)(next, chain);
  }
  return next;
}
