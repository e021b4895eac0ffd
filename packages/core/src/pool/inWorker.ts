import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CqrsError } from '../errors/CqrsError.js';

const brand = Symbol.for('cqrs-pool.inWorker');

/** Where a pool thread finds a handler: a module and the name of its export. Made by {@link inWorker}. */
export interface WorkerHandlerRef {
  readonly [brand]: true;
  /** The module's `file:` URL. */
  readonly moduleUrl: string;
  readonly exportName: string;
}

/**
 * Says that a handler runs in the worker pool: `exportName` of the module at `moduleUrl` (a `URL`, a
 * `file:` URL string or an absolute path) must be a `handle(definition, fn)` export.
 * @throws CqrsError `INVALID_REGISTRATION` when the URL or the export name is malformed.
 */
export function inWorker(moduleUrl: URL | string, exportName = 'default'): WorkerHandlerRef {
  const href = moduleHref(moduleUrl, 'inWorker: moduleUrl');
  if (typeof exportName !== 'string' || exportName === '') {
    throw new CqrsError('INVALID_REGISTRATION', 'inWorker: exportName must be a non-empty string');
  }
  return Object.freeze({ [brand]: true as const, moduleUrl: href, exportName });
}

/** The `file:` URL of a module given as a `URL`, a URL string or an absolute path. @internal */
export function moduleHref(moduleUrl: URL | string, what: string): string {
  if (moduleUrl instanceof URL) return moduleUrl.href;
  if (typeof moduleUrl === 'string' && isAbsolute(moduleUrl)) return pathToFileURL(moduleUrl).href;
  if (typeof moduleUrl === 'string' && URL.canParse(moduleUrl)) return new URL(moduleUrl).href;
  throw new CqrsError(
    'INVALID_REGISTRATION',
    `${what} must be a URL or an absolute path, got ${String(moduleUrl)}`,
  );
}

/** @internal */
export function isWorkerHandlerRef(value: unknown): value is WorkerHandlerRef {
  return typeof value === 'object' && value !== null && (value as { [brand]?: unknown })[brand] === true;
}
