import type { Metadata } from './HandlerContext.js';

/** A level of a pino-style logger. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** One logging method, pino's argument order: the fields first, then the message. */
export type LogMethod = (obj: object, msg?: string) => void;

/**
 * A pino-style logger (a pino logger fits as it is; so does `consoleLogger`). Used by the `logging`
 * middleware and behind `ctx.logger`. The level is read, when the logger exposes one, from `levelVal` (pino),
 * else `isLevelEnabled`, else `level`; a logger with none of these is taken to log everything.
 */
export interface Logger {
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  trace?: LogMethod;
  debug?: LogMethod;
  fatal?: LogMethod;
  /** A logger that adds `bindings` to every line. */
  child?(bindings: Record<string, unknown>): Logger;
  isLevelEnabled?(level: string): boolean;
  /** The numeric level (pino): a line is written when its level's value is ≥ this. */
  readonly levelVal?: number;
  readonly level?: string;
  /** Custom level values (pino's `levels.values`); the standard pino values otherwise. */
  readonly levels?: { readonly values: Readonly<Record<string, number>> };
}

const levels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const nothing = (): void => {};

/** The logger `ctx.logger` is when no base logger is configured: every method does nothing. @internal */
export const noopLogger: Logger = Object.freeze({
  trace: nothing,
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
  fatal: nothing,
  child: (): Logger => noopLogger,
  isLevelEnabled: (): boolean => false,
  level: 'silent',
  levelVal: Number.POSITIVE_INFINITY,
});

/** True when `value` has the `info`, `warn` and `error` functions a {@link Logger} needs. @internal */
export function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.info === 'function' && typeof v.warn === 'function' && typeof v.error === 'function';
}

/**
 * `ctx.logger` of one call: `base.child({ handler, kind, subscriber?, correlationId? })`, or, when `base` has
 * no `child`, a wrapper that merges those bindings into the fields of every line. @internal
 */
export function handlerLogger(
  base: Logger,
  handler: string,
  kind: string,
  metadata: Metadata,
  subscriber?: string,
): Logger {
  if (base === noopLogger) return base;
  const bindings: Record<string, unknown> = { handler, kind };
  if (subscriber !== undefined) bindings.subscriber = subscriber;
  const correlationId = metadata.correlationId;
  if (typeof correlationId === 'string') bindings.correlationId = correlationId;
  return typeof base.child === 'function' ? base.child(bindings) : boundLogger(base, bindings);
}

function boundLogger(base: Logger, bindings: Readonly<Record<string, unknown>>): Logger {
  const bound: Record<string, unknown> = {
    child: (more: Record<string, unknown>): Logger => boundLogger(base, { ...bindings, ...more }),
  };
  for (const level of levels) {
    const method = base[level];
    if (typeof method !== 'function') continue;
    bound[level] = (obj: object, msg?: string): void => {
      // pino also accepts a message alone.
      if (typeof obj === 'object' && obj !== null) method.call(base, { ...bindings, ...obj }, msg);
      else method.call(base, { ...bindings }, msg ?? String(obj));
    };
  }
  if (typeof base.isLevelEnabled === 'function') bound.isLevelEnabled = base.isLevelEnabled.bind(base);
  return bound as unknown as Logger;
}
