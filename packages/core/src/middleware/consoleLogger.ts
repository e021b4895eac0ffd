import { CqrsError } from '../errors/CqrsError.js';
import type { Logger, LogLevel, LogMethod } from './logging.js';
import { standardValues } from './logging.js';

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lines below this level are dropped. Default `'info'`. */
  level?: LogLevel | 'silent';
  /** `'json'`: one JSON object per line (pino's field order). `'pretty'`: `time LEVEL message key=value …`. Default `'json'`. */
  format?: 'json' | 'pretty';
  /** Where lines go. Default the global `console`. */
  console?: Pick<Console, 'log' | 'warn' | 'error'>;
  /** Fields added to every line. */
  bindings?: Record<string, unknown>;
}

/** The logger {@link consoleLogger} returns: pino's shape, every level, settable `level`. */
export interface ConsoleLogger extends Logger {
  trace: LogMethod;
  debug: LogMethod;
  fatal: LogMethod;
  level: LogLevel | 'silent';
  readonly levelVal: number;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): ConsoleLogger;
}

const values = standardValues;

/**
 * A small pino-style logger over `console`, for {@link logging} where there is no pino: one line per event,
 * JSON (`{"level":"info","time":"…",…bindings,…fields,"msg":"…"}`) or readable. `trace`/`debug`/`info` go to
 * `console.log`, `warn` to `console.warn`, `error`/`fatal` to `console.error`. A value JSON cannot write
 * (BigInt, a cycle, an Error) is written as a string, `"[Circular]"`, or `{ name, message, stack }`.
 * @throws CqrsError `INVALID_REGISTRATION` for an unknown level or format.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): ConsoleLogger {
  const { level = 'info', format = 'json', console: out = globalThis.console, bindings = {} } = options;
  if (!(level in values)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `consoleLogger(): options.level must be a level, got ${String(level)}`,
    );
  }
  if (format !== 'json' && format !== 'pretty') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `consoleLogger(): options.format must be 'json' or 'pretty', got ${String(format)}`,
    );
  }
  return new LineLogger(level, format, out, bindings);
}

class LineLogger implements ConsoleLogger {
  #levelVal: number;
  #level: LogLevel | 'silent';

  constructor(
    level: LogLevel | 'silent',
    private readonly format: 'json' | 'pretty',
    private readonly out: Pick<Console, 'log' | 'warn' | 'error'>,
    private readonly bindings: Readonly<Record<string, unknown>>,
  ) {
    this.#level = level;
    this.#levelVal = values[level];
  }

  get level(): LogLevel | 'silent' {
    return this.#level;
  }

  set level(level: LogLevel | 'silent') {
    if (!(level in values))
      throw new CqrsError('INVALID_REGISTRATION', `consoleLogger: unknown level ${String(level)}`);
    this.#level = level;
    this.#levelVal = values[level];
  }

  get levelVal(): number {
    return this.#levelVal;
  }

  isLevelEnabled(level: string): boolean {
    const value = values[level as LogLevel];
    return value !== undefined && value !== Number.POSITIVE_INFINITY && value >= this.#levelVal;
  }

  child(bindings: Record<string, unknown>): ConsoleLogger {
    const child = new LineLogger(this.#level, this.format, this.out, { ...this.bindings, ...bindings });
    return child;
  }

  trace = (obj: object, msg?: string): void => this.write('trace', obj, msg);
  debug = (obj: object, msg?: string): void => this.write('debug', obj, msg);
  info = (obj: object, msg?: string): void => this.write('info', obj, msg);
  warn = (obj: object, msg?: string): void => this.write('warn', obj, msg);
  error = (obj: object, msg?: string): void => this.write('error', obj, msg);
  fatal = (obj: object, msg?: string): void => this.write('fatal', obj, msg);

  private write(level: LogLevel, obj: object, msg: string | undefined): void {
    if (values[level] < this.#levelVal) return;
    // pino also accepts a message alone.
    const fields = typeof obj === 'object' && obj !== null ? obj : { msg: String(obj) };
    const message = msg ?? (fields as { msg?: unknown }).msg;
    const time = new Date().toISOString();
    let line: string;
    if (this.format === 'json') {
      const record: Record<string, unknown> = { level, time, ...this.bindings, ...fields };
      if (message !== undefined) record.msg = message;
      line = safeStringify(record);
    } else {
      const pairs = Object.entries({ ...this.bindings, ...fields })
        .filter(([key, value]) => key !== 'msg' && value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : safeStringify(value)}`);
      line = `${time} ${level.toUpperCase().padEnd(5)} ${message === undefined ? '' : String(message)}${pairs.length > 0 ? `  ${pairs.join(' ')}` : ''}`;
    }
    if (level === 'warn') this.out.warn(line);
    else if (level === 'error' || level === 'fatal') this.out.error(line);
    else this.out.log(line);
  }
}

/** JSON that never throws: BigInt as a string, Errors as `{ name, message, stack }`, cycles as "[Circular]". */
function safeStringify(value: unknown): string {
  const seen: object[] = [];
  return JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v !== 'object' || v === null) return v;
    // `this` is the object holding `v`: drop ancestors that are not on the current path.
    while (seen.length > 0 && seen[seen.length - 1] !== this) seen.pop();
    if (seen.includes(v)) return '[Circular]';
    seen.push(v);
    if (v instanceof Error) {
      const e = v as Error & { code?: unknown };
      return {
        name: e.name,
        message: e.message,
        ...(e.code === undefined ? {} : { code: e.code }),
        stack: e.stack,
      };
    }
    return v;
  });
}
