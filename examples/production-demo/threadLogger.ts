/**
 * The pool's `threadLogger`: each pool thread imports this module once and its handlers' `ctx.logger` is a
 * child of `logger` bound to `{ handler, kind, correlationId }`. Its own pino instance per thread, writing
 * JSON lines to stderr like the main thread's logger.
 */
import { threadId } from 'node:worker_threads';
import pino from 'pino';

export const logger = pino(
  { level: 'warn', base: { service: 'production-demo', thread: threadId } },
  // Synchronous: a line written just before a thread is replaced still reaches stderr.
  pino.destination({ fd: 2, sync: true }),
);
