import { CqrsError } from '../errors/CqrsError.js';
import { safeString } from '../util/safeString.js';

/** A handler's thrown error as the caller gets it: `HANDLER_FAILED` with the error as `cause`. @internal */
export function handlerFailed(name: string, err: unknown): CqrsError {
  const detail = err instanceof Error ? safeString(err.message) : safeString(err);
  return new CqrsError('HANDLER_FAILED', `${name} failed: ${detail}`, { cause: err, handler: name });
}
