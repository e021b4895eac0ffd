// The command line of every example: `--help` prints the usage and exits 0; an unknown option, a missing
// value or a bad number prints one line to stderr and exits 2 (no stack trace). Runs before an example starts
// anything, so exiting here leaves nothing behind.
import { parseArgs } from 'node:util';

/** An option taking a value: `--name <value>`, `--name=<value>`. */
export interface StringOption {
  type: 'string';
  /** The value's placeholder in the usage text: `--duration <seconds>`. */
  value: string;
  default: string;
  help: string;
}
/** A flag: `--name`. */
export interface BooleanOption {
  type: 'boolean';
  help: string;
}
export type OptionSpec = StringOption | BooleanOption;

export interface Cli<O extends Record<string, OptionSpec>> {
  /** How to run it, first line of the usage: `node dist/examples/demo/main.js`. */
  command: string;
  /** What it does, a few lines. */
  summary: string;
  options: O;
}

export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends BooleanOption ? boolean : string;
};

/** The usage text `--help` prints. */
export function usage(cli: Cli<Record<string, OptionSpec>>): string {
  const rows: [string, string][] = Object.entries(cli.options).map(([name, spec]) =>
    spec.type === 'string'
      ? [`--${name} <${spec.value}>`, `${spec.help} (default: ${spec.default})`]
      : [`--${name}`, spec.help],
  );
  rows.push(['-h, --help', 'print this help and exit']);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `Usage: ${cli.command}${Object.keys(cli.options).length > 0 ? ' [options]' : ''}`,
    '',
    cli.summary,
    '',
    'Options:',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    '',
  ].join('\n');
}

/** One line to stderr, then exit 2: the convention for a command-line mistake. */
export function usageError(message: string): never {
  process.stderr.write(`error: ${message} (see --help)\n`);
  process.exit(2);
}

/**
 * Parses `argv` (default: the process's arguments) against `cli.options`; handles `--help` and every
 * mistake itself (see the top of this file). Every string option has a default, so every value is set.
 */
export function parseCli<const O extends Record<string, OptionSpec>>(
  cli: Cli<O>,
  argv: readonly string[] = process.argv.slice(2),
): OptionValues<O> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(cli.options)) options[name] = { type: spec.type };
  // strict: false hands back every token, so the mistakes are reported here, in one line each, instead of
  // as parseArgs's multi-line TypeError.
  const { values, tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (values.help === true) {
    process.stdout.write(usage(cli));
    process.exit(0);
  }
  for (const token of tokens) {
    if (token.kind === 'positional') usageError(`unexpected argument ${JSON.stringify(token.value)}`);
    if (token.kind !== 'option') continue;
    if (token.name === 'help') usageError(`option ${token.rawName} takes no value`);
    const spec = cli.options[token.name];
    if (spec === undefined) usageError(`unknown option ${token.rawName}`);
    if (spec.type === 'string' && token.value === undefined)
      usageError(`option ${token.rawName} needs a value`);
    if (spec.type === 'boolean' && token.inlineValue) usageError(`option ${token.rawName} takes no value`);
  }
  const out: Record<string, string | boolean> = {};
  for (const [name, spec] of Object.entries(cli.options)) {
    const given = values[name];
    out[name] = spec.type === 'string' ? (typeof given === 'string' ? given : spec.default) : given === true;
  }
  return out as OptionValues<O>;
}

/** `value` as a number of at least `min` (a whole number when `integer`), or a usage error naming `--name`. */
export function numberOption(name: string, value: string, min: number, integer = false): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    usageError(
      `--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
