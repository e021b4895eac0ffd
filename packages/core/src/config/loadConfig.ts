import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { CqrsConfig } from './configSchema.js';
import { configSchema } from './configSchema.js';

/**
 * Validates a configuration object (already parsed from JSON or YAML) and fills in its defaults; time
 * fields given as duration strings (`timeout: '30s'`) come back in milliseconds (`timeout_ms: 30000`).
 * @throws CqrsError `INVALID_REGISTRATION` whose message names the first bad field (`middleware.retry.max_retries: …`),
 * with every zod issue in `issues`.
 */
export function parseConfig(value: unknown, source = 'config'): CqrsConfig {
  const parsed = configSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0] as z.core.$ZodIssue;
  const where = first.path.length === 0 ? '(root)' : first.path.map(String).join('.');
  throw new CqrsError('INVALID_REGISTRATION', `${source}: ${where}: ${first.message}`, {
    issues: parsed.error.issues,
  });
}

/**
 * Reads and validates a configuration file: YAML when its name ends in `.yaml` or `.yml`, JSON otherwise
 * (see `configs/` of @cqrs-pool/core for development, production and test examples).
 * @throws CqrsError `INVALID_REGISTRATION` when the file cannot be read, does not parse, or has a bad field (named).
 */
export async function loadConfig(file: string | URL): Promise<CqrsConfig> {
  const name = file instanceof URL ? file.pathname : file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CqrsError('INVALID_REGISTRATION', `${name}: cannot read the configuration file`, {
      cause: err,
    });
  }
  const yaml = /^\.ya?ml$/i.test(extname(name));
  let value: unknown;
  try {
    // YAML 1.2 core schema: `yes`/`no` stay strings (so a boolean field refuses them), a key given twice
    // is an error, and so is a file with several documents.
    value = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    // The yaml package's message goes on with an excerpt of the file, after a colon: keep the first line.
    let message = (err as Error).message.split('\n')[0]?.replace(/:$/, '') ?? '';
    if (message.startsWith('Source contains multiple documents')) {
      message = `several documents (separated by ---) where one configuration was expected${message.slice(message.lastIndexOf(' at line'))}`;
    }
    throw new CqrsError('INVALID_REGISTRATION', `${name}: not valid ${yaml ? 'YAML' : 'JSON'}: ${message}`, {
      cause: err,
    });
  }
  return parseConfig(value, name);
}
