import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { ErrorCode } from '../errors/codes.js';
import type { Logger, LogLevel, LogMethod } from '../handler/Logger.js';
import type { Call, Middleware, Next } from './Middleware.js';

// The logger types live with the handler types (`ctx.logger`); exported here too, where they were first.
export type { Logger, LogLevel, LogMethod };

/** Options of {@link logging}. */
export interface LoggingOptions {
  /** The level of a successful call's line. Default `'info'`. */
  level?: LogLevel;
  /** The level of a failure: the handler threw or crashed, timed out, overloaded … Default `'error'`. */
  errorLevel?: LogLevel;
  /** The level of a failure whose code is in `clientErrorCodes` (the caller's fault, or a refusal). Default `'warn'`. */
  clientErrorLevel?: LogLevel;
  /** Codes logged at `clientErrorLevel`. Default `VALIDATION`, `RATE_LIMITED`, `CIRCUIT_OPEN`, `ABORTED`, `HANDLER_NOT_FOUND`. */
  clientErrorCodes?: readonly ErrorCode[];
  /** A call that takes longer than this (ms) is logged at `'warn'` at least, with `slow: true`. Default: off. */
  slowMs?: number;
  /** Adds `input` to every line. Default false: inputs often carry personal data. */
  includeInput?: boolean;
  /** Adds `result` to the line of a successful call. Default false. */
  includeResult?: boolean;
}

/** The fields of one line. `handler` and `kind` are bound to the child logger instead when the logger has `child`. */
export interface CallLogLine {
  handler?: string;
  kind?: string;
  /** An event subscriber's name (`handler` is then its event). */
  subscriber?: string;
  durationMs: number;
  outcome: 'ok' | 'error';
  code?: string;
  correlationId?: string;
  slow?: true;
  err?: LoggedError;
  input?: unknown;
  result?: unknown;
}

/** A failure as logged: what identifies it, never the call's input. The stacks only at `errorLevel`. */
export interface LoggedError {
  name: string;
  message: string;
  code?: string;
  retryAfterMs?: number;
  /** VALIDATION: the zod issues' code, path and message. */
  issues?: { code: unknown; path: unknown; message: unknown }[];
  stack?: string;
  cause?: { name: string; message: string; code?: unknown; stack?: string };
}

/** pino's level values. @internal */
export const standardValues: Readonly<Record<LogLevel | 'silent', number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};
const levelNames = new Set<string>(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const defaultClientCodes: readonly ErrorCode[] = [
  'VALIDATION',
  'RATE_LIMITED',
  'CIRCUIT_OPEN',
  'ABORTED',
  'HANDLER_NOT_FOUND',
];

/**
 * Logs one line per settled call: `{ handler, kind, durationMs, outcome: 'ok' | 'error', code?,
 * correlationId? (from metadata.correlationId), err? }` with a message like `command CreateUser ok in 1.2ms`.
 * Failures go at `errorLevel`, or at `clientErrorLevel` for the codes in `clientErrorCodes`; calls slower than
 * `slowMs` at `warn` at least. Never logs the input unless `includeInput: true`.
 *
 * With `logger.child`, one child per handler is made at composition (`{ handler, kind }` bound; an event
 * subscriber's `{ handler: <event>, kind: 'event', subscriber }`, its message naming `<event>:<subscriber>`). The logger's
 * level is read once per call: when no line this call could produce is enabled, the call passes straight
 * through, untimed; when only failures are, only failures are observed. (A pino child keeps the level it
 * was made with: change the level of the root logger before registering handlers, not after.)
 * @throws CqrsError `INVALID_REGISTRATION` for a bad option or a logger without a method for a level used.
 */
export function logging(logger: Logger, options: LoggingOptions = {}): Middleware {
  const {
    level = 'info',
    errorLevel = 'error',
    clientErrorLevel = 'warn',
    clientErrorCodes = defaultClientCodes,
    slowMs,
    includeInput = false,
    includeResult = false,
  } = options;
  const used: LogLevel[] = [
    level,
    errorLevel,
    clientErrorLevel,
    ...(slowMs === undefined ? [] : ['warn' as const]),
  ];
  checkOptions(logger, options, used);
  const clientCodes = new Set<string>(clientErrorCodes);

  return (next: Next, chain) => {
    const { name, kind, subscriber } = chain;
    // An event subscriber's lines say which event (`handler`) and which subscriber, as its ctx.logger does.
    const handler = subscriber === undefined ? name : chain.definition.name;
    const bindings: { handler: string; kind: string; subscriber?: string } =
      subscriber === undefined ? { handler, kind } : { handler, kind, subscriber };
    const bound = typeof logger.child === 'function';
    const target = bound ? (logger.child as (b: Record<string, unknown>) => Logger)(bindings) : logger;
    const values = target.levels?.values ?? standardValues;
    const levelValue = (l: LogLevel): number => values[l] ?? standardValues[l];
    const okValue = levelValue(level);
    const errorValue = levelValue(errorLevel);
    const clientValue = levelValue(clientErrorLevel);
    const warnValue = levelValue('warn');
    const slowOn = slowMs !== undefined;
    // Below `full`, a success may be logged; below `any`, some line may be.
    const full = slowOn ? Math.max(okValue, warnValue) : okValue;
    const any = Math.max(full, errorValue, clientValue);
    const threshold = thresholdOf(target, values, used);
    const prefix = `${kind} ${name} `;

    const emit = (lineLevel: LogLevel, line: CallLogLine, message: string): void => {
      (target[lineLevel] as LogMethod).call(target, line, message);
    };

    const describe = (call: Call, started: number): CallLogLine => {
      const durationMs = performance.now() - started;
      const line: CallLogLine = bound
        ? { durationMs: round(durationMs), outcome: 'ok' }
        : { ...bindings, durationMs: round(durationMs), outcome: 'ok' };
      const correlationId = call.metadata.correlationId;
      if (typeof correlationId === 'string') line.correlationId = correlationId;
      if (includeInput) line.input = call.input;
      if (slowOn && durationMs > (slowMs as number)) line.slow = true;
      return line;
    };

    const failed = (call: Call, started: number, t: number, err: unknown): void => {
      const line = describe(call, started);
      const code = isCqrsError(err) ? err.code : undefined;
      const client = code !== undefined && clientCodes.has(code);
      let lineLevel = client ? clientErrorLevel : errorLevel;
      if (line.slow === true && levelValue(lineLevel) < warnValue) lineLevel = 'warn';
      if (levelValue(lineLevel) < t) return;
      line.outcome = 'error';
      if (code !== undefined) line.code = code;
      line.err = describeError(err, !client);
      const ms = line.durationMs.toFixed(1);
      emit(
        lineLevel,
        line,
        `${prefix}error${code === undefined ? '' : ` ${code}`} in ${ms}ms${line.slow ? ' (slow)' : ''}`,
      );
    };

    const succeeded = (call: Call, started: number, t: number, value: unknown): void => {
      const line = describe(call, started);
      const lineLevel: LogLevel = line.slow === true && okValue < warnValue ? 'warn' : level;
      if (levelValue(lineLevel) < t) return;
      if (includeResult) line.result = value;
      emit(lineLevel, line, `${prefix}ok in ${line.durationMs.toFixed(1)}ms${line.slow ? ' (slow)' : ''}`);
    };

    return (call) => {
      const t = threshold();
      // The one check a call pays when its lines are off.
      if (t > any) return next(call);
      const started = performance.now();
      let pending: Promise<unknown>;
      try {
        pending = next(call);
      } catch (err) {
        pending = Promise.reject(err);
      }
      const onFailure = (err: unknown): never => {
        failed(call, started, t, err);
        throw err;
      };
      if (t > full) return pending.then(undefined, onFailure);
      return pending.then((value) => {
        succeeded(call, started, t, value);
        return value;
      }, onFailure);
    };
  };
}

/**
 * How the current level is read, chosen once per chain: a function giving the lowest level value the logger
 * writes now (−∞: everything, +∞: nothing).
 */
function thresholdOf(
  target: Logger,
  values: Readonly<Record<string, number>>,
  candidates: readonly LogLevel[],
): () => number {
  if (typeof target.levelVal === 'number') return () => target.levelVal as number;
  const isLevelEnabled = target.isLevelEnabled;
  if (typeof isLevelEnabled === 'function') {
    // Only the levels this middleware writes at matter: the highest first, so a logger that writes none of
    // them costs one question per call.
    const ascending = [...new Set(candidates)]
      .map((name): [LogLevel, number] => [name, values[name] ?? standardValues[name]])
      .sort((a, b) => a[1] - b[1]);
    const highest = ascending[ascending.length - 1] as [LogLevel, number];
    return () => {
      if (!isLevelEnabled.call(target, highest[0])) return Number.POSITIVE_INFINITY;
      for (const [name, value] of ascending) if (isLevelEnabled.call(target, name)) return value;
      return highest[1];
    };
  }
  if (typeof target.level === 'string') {
    return () => {
      const current = target.level as string;
      return values[current] ?? standardValues[current as LogLevel] ?? Number.NEGATIVE_INFINITY;
    };
  }
  return () => Number.NEGATIVE_INFINITY;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function describeError(err: unknown, withStacks: boolean): LoggedError {
  if (typeof err !== 'object' || err === null) return { name: typeof err, message: String(err) };
  const e = err as Partial<CqrsError> & { cause?: unknown };
  const out: LoggedError = { name: String(e.name), message: String(e.message) };
  if (typeof e.code === 'string') out.code = e.code;
  if (typeof e.retryAfterMs === 'number') out.retryAfterMs = e.retryAfterMs;
  if (Array.isArray(e.issues)) {
    out.issues = e.issues.map((issue: { code?: unknown; path?: unknown; message?: unknown }) => ({
      code: issue.code,
      path: issue.path,
      message: issue.message,
    }));
  }
  if (withStacks && typeof e.stack === 'string') out.stack = e.stack;
  const cause = e.cause;
  if (typeof cause === 'object' && cause !== null) {
    const c = cause as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown };
    out.cause = { name: String(c.name), message: String(c.message) };
    if (c.code !== undefined) out.cause.code = c.code;
    if (withStacks && typeof c.stack === 'string') out.cause.stack = c.stack;
  }
  return out;
}

function checkOptions(logger: Logger, options: LoggingOptions, used: readonly string[]): void {
  if (typeof logger !== 'object' || logger === null) {
    throw new CqrsError('INVALID_REGISTRATION', 'logging(): logger must be a pino-style logger object');
  }
  for (const field of ['level', 'errorLevel', 'clientErrorLevel'] as const) {
    const value = options[field];
    if (value !== undefined && !levelNames.has(value)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `logging(): options.${field} must be one of ${[...levelNames].join(', ')}, got ${String(value)}`,
      );
    }
  }
  for (const l of used) {
    if (typeof (logger as unknown as Record<string, unknown>)[l] !== 'function') {
      throw new CqrsError('INVALID_REGISTRATION', `logging(): the logger has no ${l}() method`);
    }
  }
  const { slowMs, clientErrorCodes } = options;
  if (slowMs !== undefined && (typeof slowMs !== 'number' || !(slowMs >= 0))) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `logging(): options.slowMs must be a number ≥ 0, got ${String(slowMs)}`,
    );
  }
  if (clientErrorCodes !== undefined && !Array.isArray(clientErrorCodes)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'logging(): options.clientErrorCodes must be an array of error codes',
    );
  }
}
