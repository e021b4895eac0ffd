import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { CqrsConfig } from './configSchema.js';
import { configSchema } from './configSchema.js';

/**
 * Validates a configuration object (already parsed from JSON) and fills in its defaults.
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
 * Reads and validates a JSON configuration file (see `configs/` of @cqrs-pool/core for development,
 * production and test examples).
 * @throws CqrsError `INVALID_REGISTRATION` when the file cannot be read, is not JSON, or has a bad field (named).
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
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CqrsError('INVALID_REGISTRATION', `${name}: not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfig(value, name);
}
