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

describe('configuration files', () => {
  it('ships development, production and test configs that all load', async () => {
    const files = (await readdir(configs)).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(['development.json', 'production.json', 'test.json']);
    for (const file of files) {
      const config = await loadConfig(new URL(file, configs));
      expect(config.environment).toBe(file.replace('.json', ''));
    }
  });

  it('fills in defaults for an empty object', () => {
    const config = parseConfig({});
    expect(config.command_bus.enable_metrics).toBe(true);
    expect(config.command_bus.enable_retry).toBe(false);
    expect(config.query_bus.enable_retry).toBe(true);
    expect(config.middleware.validation).toEqual({ enabled: true, output: false });
    expect(config.middleware.rate_limit).toBeUndefined();
  });

  it('names the bad field of an out-of-range value', () => {
    let err: unknown;
    try {
      parseConfig({ middleware: { circuit_breaker: { failure_threshold: 0 } } });
    } catch (e) {
      err = e;
    }
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect((err as Error).message).toContain('middleware.circuit_breaker.failure_threshold');
    expect((err as { issues?: unknown[] }).issues?.length).toBeGreaterThan(0);
  });

  it('names a misspelt field instead of ignoring it', () => {
    expect(() => parseConfig({ query_bus: { enable_cashing: true } })).toThrow(/query_bus.*enable_cashing/);
  });

  it('names the field of a wrong type', () => {
    expect(() => parseConfig({ pool: { threads: 'four' } })).toThrow(/pool\.threads/);
  });

  it('reports a file that is not JSON, and one that does not exist, as INVALID_REGISTRATION', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cqrs-config-'));
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ "pool": { "threads": 2, } }');
    const notJson = await failure(loadConfig(broken));
    expect(isCqrsError(notJson, 'INVALID_REGISTRATION')).toBe(true);
    expect((notJson as Error).message).toMatch(/broken\.json: not valid JSON/);
    const missing = await failure(loadConfig(join(dir, 'missing.json')));
    expect(isCqrsError(missing, 'INVALID_REGISTRATION')).toBe(true);
  });
});
