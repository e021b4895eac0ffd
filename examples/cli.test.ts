import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const built = (example: string): string =>
  fileURLToPath(new URL(`../dist/examples/${example}.js`, import.meta.url));

/** Every example's entry, with an option it documents (or none). */
const examples: [string, string | undefined][] = [
  ['demo/main', undefined],
  ['simplified-demo/main', undefined],
  ['event-driven/main', undefined],
  ['shutdown/main', undefined],
  ['production-demo/main', '--linger <seconds>'],
  ['http-service/main', '--connections <n>'],
  ['http-service/server', '--variant <inline|pool|piscina>'],
];

/** Runs an example expecting a non-zero exit; returns its exit code and output. */
async function failing(args: string[]): Promise<{ code: unknown; stdout: string; stderr: string }> {
  try {
    await run(process.execPath, args, { timeout: 30_000 });
  } catch (err) {
    const { code, stdout, stderr } = err as { code: unknown; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
  throw new Error(`expected ${args.join(' ')} to fail`);
}

describe.each(examples)('examples/%s on the command line', (example, documented) => {
  it('prints its usage for --help and -h, and exits 0 without starting', async () => {
    for (const flag of ['--help', '-h']) {
      const { stdout, stderr } = await run(process.execPath, [built(example), flag], { timeout: 30_000 });
      expect(stdout).toMatch(new RegExp(`^Usage: node dist/examples/${example}\\.js`));
      // The usage and nothing after it: the example did not start.
      expect(stdout).toMatch(/-h, --help +print this help and exit\n$/);
      if (documented !== undefined) expect(stdout).toContain(documented);
      expect(stderr).toBe('');
    }
  }, 90_000);

  it('refuses an unknown option in one line on stderr, exit code 2, no stack trace', async () => {
    const { code, stdout, stderr } = await failing([built(example), '--bogus']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('error: unknown option --bogus (see --help)\n');
  }, 60_000);

  it('refuses a stray argument the same way', async () => {
    const { code, stderr } = await failing([built(example), 'stray']);
    expect(code).toBe(2);
    expect(stderr).toBe('error: unexpected argument "stray" (see --help)\n');
  }, 60_000);
});

describe('options with values', () => {
  it('names an option given without its value, or with a value that is no number', async () => {
    const main = built('production-demo/main');
    const missing = await failing([main, '--duration']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('error: option --duration needs a value (see --help)\n');
    const notANumber = await failing([main, '--rate', 'fast']);
    expect(notANumber.code).toBe(2);
    expect(notANumber.stderr).toBe('error: --rate must be a number >= 1, got "fast" (see --help)\n');
    const fraction = await failing([main, '--threads=1.5']);
    expect(fraction.stderr).toBe('error: --threads must be an integer >= 1, got "1.5" (see --help)\n');
  }, 120_000);

  it('names a variant that does not exist', async () => {
    const server = await failing([built('http-service/server'), '--variant', 'cluster']);
    expect(server.code).toBe(2);
    expect(server.stderr).toBe(
      'error: --variant must be one of inline, pool, piscina, got "cluster" (see --help)\n',
    );
    const main = await failing([built('http-service/main'), '--variants', 'pool,cluster']);
    expect(main.code).toBe(2);
    expect(main.stderr).toBe(
      'error: --variants: unknown variant "cluster" (known: inline, pool, piscina) (see --help)\n',
    );
  }, 90_000);
});
