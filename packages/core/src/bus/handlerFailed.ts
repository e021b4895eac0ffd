import { CqrsError } from '../errors/CqrsError.js';
import { isForwarded } from '../errors/forwarded.js';
import { safeString } from '../util/safeString.js';

/**
 * A handler's thrown error as the caller gets it: `HANDLER_FAILED` with the error as `cause` — except the
 * outcome of a call a forwarding handler ran elsewhere (see errors/forwarded.ts), which passes as it is.
 * @internal
 */
export function handlerFailed(name: string, err: unknown): CqrsError {
  if (isForwarded(err)) return err as CqrsError;
  const detail = err instanceof Error ? safeString(err.message) : safeString(err);
  return new CqrsError('HANDLER_FAILED', `${name} failed: ${detail}`, { cause: err, handler: name });
}
