import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCqrsError } from '../errors/CqrsError.js';
import { loadConfig, parseConfig } from './loadConfig.js';

const configs = new URL('../../configs/', import.meta.url);

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** The error `parseConfig` throws for `value`; fails the test when it throws none or not a config error. */
function parseFailure(value: unknown): Error & { issues?: unknown[] } {
  let err: unknown;
  try {
    parseConfig(value);
  } catch (e) {
    err = e;
  }
  expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
  return err as Error & { issues?: unknown[] };
}

/** Writes `text` to a fresh temporary file called `name`. */
async function tempFile(name: string, text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'cqrs-config-')), name);
  await writeFile(file, text);
  return file;
}

describe('configuration files', () => {
  it('ships development, production and test configs that all load', async () => {
    const files = (await readdir(configs)).sort();
    expect(files).toEqual(['development.json', 'production.json', 'production.yaml', 'test.json']);
    for (const file of files) {
      const config = await loadConfig(new URL(file, configs));
      expect(config.environment).toBe(file.replace(/\.(json|yaml)$/, ''));
    }
  });

  it('reads production.yaml, durations and all, as the same configuration as production.json', async () => {
    const fromYaml = await loadConfig(new URL('production.yaml', configs));
    const fromJson = await loadConfig(new URL('production.json', configs));
    expect(fromYaml).toEqual(fromJson);
    expect(fromYaml.middleware.caching?.ttl_ms).toBe(600_000);
    expect(fromYaml.command_bus.timeout_ms).toBe(30_000);
  });

  it('fills in defaults for an empty object', () => {
    const config = parseConfig({});
    expect(config.command_bus.enable_metrics).toBe(true);
    expect(config.command_bus.enable_retry).toBe(false);
    expect(config.query_bus.enable_retry).toBe(true);
    expect(config.middleware.validation).toEqual({ enabled: true, output: false });
    expect(config.middleware.rate_limit).toBeUndefined();
    expect(config.middleware.circuit_breaker).toEqual({
      enabled: false,
      failure_threshold: 5,
      reset_after_ms: 30_000,
      half_open_probes: 1,
    });
  });

  it('names the bad field of an out-of-range value', () => {
    const err = parseFailure({ middleware: { circuit_breaker: { failure_threshold: 0 } } });
    expect(err.message).toContain('middleware.circuit_breaker.failure_threshold');
    expect(err.issues?.length).toBeGreaterThan(0);
  });

  it('names a misspelt field instead of ignoring it', () => {
    expect(() => parseConfig({ query_bus: { enable_cashing: true } })).toThrow(/query_bus.*enable_cashing/);
  });

  it('names the field of a wrong type', () => {
    expect(() => parseConfig({ pool: { threads: 'four' } })).toThrow(/pool\.threads/);
  });

  it('reports a file that is not JSON, and one that does not exist, as INVALID_REGISTRATION', async () => {
    const broken = await tempFile('broken.json', '{ "pool": { "threads": 2, } }');
    const notJson = await failure(loadConfig(broken));
    expect(isCqrsError(notJson, 'INVALID_REGISTRATION')).toBe(true);
    expect((notJson as Error).message).toMatch(/broken\.json: not valid JSON/);
    const missing = await failure(loadConfig(join(tmpdir(), 'no-such-dir-cqrs', 'missing.json')));
    expect(isCqrsError(missing, 'INVALID_REGISTRATION')).toBe(true);
  });
});

describe('durations', () => {
  it('reads duration strings into the _ms fields, alone or added up', () => {
    const config = parseConfig({
      pool: { idle_timeout: '1m', cancel_grace: '1.5s' },
      command_bus: { timeout: '1m30s' },
      query_bus: { timeout: '500ms' },
      middleware: {
        timeout: { grace: '250ms' },
        circuit_breaker: { reset_after: '1h' },
        rate_limit: { limit: 10, window: '1s' },
        caching: { ttl: '10m' },
        retry: { base_delay: '20ms', max_delay: '2s' },
        logging: { slow: '750ms' },
      },
    });
    expect(config.pool).toEqual({ idle_timeout_ms: 60_000, cancel_grace_ms: 1_500 });
    expect(config.command_bus.timeout_ms).toBe(90_000);
    expect(config.query_bus.timeout_ms).toBe(500);
    expect(config.middleware.timeout.grace_ms).toBe(250);
    expect(config.middleware.circuit_breaker.reset_after_ms).toBe(3_600_000);
    expect(config.middleware.rate_limit?.window_ms).toBe(1_000);
    expect(config.middleware.caching?.ttl_ms).toBe(600_000);
    expect(config.middleware.retry).toMatchObject({ base_delay_ms: 20, max_delay_ms: 2_000 });
    expect(config.middleware.logging.slow_ms).toBe(750);
    // Only the _ms spelling survives parsing.
    expect(config.command_bus).not.toHaveProperty('timeout');
    expect(config.middleware.caching).not.toHaveProperty('ttl');
  });

  it('keeps the defaults of time fields given in neither spelling', () => {
    const config = parseConfig({ middleware: { circuit_breaker: { enabled: true }, retry: {} } });
    expect(config.middleware.circuit_breaker.reset_after_ms).toBe(30_000);
    expect(config.middleware.retry).toMatchObject({ base_delay_ms: 50, max_delay_ms: 2_000 });
    expect(config.command_bus).not.toHaveProperty('timeout_ms');
  });

  it('refuses one field given in both spellings, naming it', () => {
    const err = parseFailure({ middleware: { caching: { ttl: '10m', ttl_ms: 600_000 } } });
    expect(err.message).toBe('config: middleware.caching.ttl: give ttl or ttl_ms, not both');
    // Even when the two agree: a file that says it twice will be edited in one place only.
    expect(() => parseConfig({ command_bus: { timeout: '30s', timeout_ms: 30_000 } })).toThrow(
      /command_bus\.timeout: give timeout or timeout_ms, not both/,
    );
  });

  it('refuses a required time field given in neither spelling', () => {
    expect(() => parseConfig({ middleware: { rate_limit: { limit: 10 } } })).toThrow(
      /middleware\.rate_limit\.window: required: give window .* or window_ms/,
    );
    expect(() => parseConfig({ middleware: { caching: { max: 10 } } })).toThrow(
      /middleware\.caching\.ttl: required/,
    );
  });

  it.each([
    ['10 min', 'invalid duration "10 min"'],
    ['10', 'invalid duration "10"'],
    [30, 'invalid duration 30'],
    ['5sec', 'invalid duration "5sec"'],
    ['-1s', 'invalid duration "-1s"'],
  ])('refuses the duration %j, naming the field', (ttl, message) => {
    const err = parseFailure({ middleware: { caching: { ttl } } });
    expect(err.message).toMatch(
      new RegExp(`^config: middleware\\.caching\\.ttl: ${message}: write a number and a unit`),
    );
  });

  it('holds a duration to the same rule as its _ms twin', () => {
    // ttl_ms must be positive: so must ttl.
    expect(parseFailure({ middleware: { caching: { ttl: '0s' } } }).message).toMatch(
      /middleware\.caching\.ttl: Too small/,
    );
    // cancel_grace_ms is a whole number of ms.
    expect(parseFailure({ pool: { cancel_grace: '1.5ms' } }).message).toMatch(/pool\.cancel_grace: .*int/);
    // A number in a duration field, a string in an _ms field.
    expect(parseFailure({ command_bus: { timeout_ms: '30s' } }).message).toMatch(/command_bus\.timeout_ms: /);
  });
});

describe('YAML files', () => {
  it('reads .yaml and .yml by extension, with durations', async () => {
    const text = [
      'environment: staging',
      'pool:',
      '  threads: 2',
      'query_bus:',
      '  timeout: 2s',
      'middleware:',
      '  caching:',
      '    ttl: 10m',
      '',
    ].join('\n');
    for (const name of ['staging.yaml', 'staging.yml', 'STAGING.YAML']) {
      const config = await loadConfig(await tempFile(name, text));
      expect(config.environment).toBe('staging');
      expect(config.pool.threads).toBe(2);
      expect(config.query_bus.timeout_ms).toBe(2_000);
      expect(config.middleware.caching?.ttl_ms).toBe(600_000);
    }
  });

  it('names the file and the field of a bad duration', async () => {
    const file = await tempFile('production.yaml', 'middleware:\n  caching:\n    ttl: 10 min\n');
    const err = await failure(loadConfig(file));
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect((err as Error).message).toContain(`${file}: middleware.caching.ttl: invalid duration "10 min"`);
  });

  it('names an unknown field, at any depth', async () => {
    const top = await failure(loadConfig(await tempFile('a.yaml', 'pool:\n  threads: 2\nqueue_bus: {}\n')));
    expect((top as Error).message).toMatch(/a\.yaml: \(root\): Unrecognized key: "queue_bus"/);
    const deep = await failure(
      loadConfig(await tempFile('b.yaml', 'middleware:\n  caching:\n    ttl: 1m\n    tll: 2m\n')),
    );
    expect((deep as Error).message).toMatch(/b\.yaml: middleware\.caching: Unrecognized key: "tll"/);
  });

  it('refuses YAML 1.1 booleans: `yes` is a string, not true', async () => {
    const err = await failure(loadConfig(await tempFile('c.yaml', 'command_bus:\n  enable_retry: yes\n')));
    expect((err as Error).message).toMatch(/c\.yaml: command_bus\.enable_retry: .*expected boolean/);
  });

  it('reports a file that is not YAML: bad syntax, a key given twice, several documents', async () => {
    for (const [name, text] of [
      ['syntax.yaml', 'pool: [1,\n'],
      ['twice.yaml', 'pool:\n  threads: 1\n  threads: 2\n'],
      ['two-docs.yaml', 'pool: {}\n---\npool: {}\n'],
    ] as const) {
      const err = await failure(loadConfig(await tempFile(name, text)));
      expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
      expect((err as Error).message).toMatch(new RegExp(`${name}: not valid YAML: \\S`));
      expect((err as Error).message).not.toContain('\n');
      expect((err as Error).message).toMatch(/at line \d+, column \d+$/);
    }
  });

  it('says so, without naming the yaml library, when a file holds several documents', async () => {
    const err = await failure(loadConfig(await tempFile('docs.yaml', 'pool: {}\n---\npool: {}\n')));
    expect((err as Error).message).toMatch(
      /docs\.yaml: not valid YAML: several documents \(separated by ---\) where one configuration was expected at line 2/,
    );
  });

  it('refuses an empty YAML file: a configuration is an object', async () => {
    const err = await failure(loadConfig(await tempFile('empty.yaml', '')));
    expect((err as Error).message).toMatch(/empty\.yaml: \(root\): .*expected object/);
  });
});
