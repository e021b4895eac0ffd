import { CqrsError } from '../errors/CqrsError.js';
import { isForwarded } from '../errors/forwarded.js';
import { safeString } from '../util/safeString.js';

/**
 * A handler's thrown error as the caller gets it: `HANDLER_FAILED` with the error as `cause` — except the
 * outcome of a call a forwarding handler ran elsewhere (see errors/forwarded.ts), which passes as it is.
 * Never throws, whatever the handler threw: a proxy whose every trap throws still becomes HANDLER_FAILED
 * (a throw here would reach the caller as a stray error and leave the call counted in flight).
 * @internal
 */
export function handlerFailed(name: string, err: unknown): CqrsError {
  let forwarded = false;
  let detail: string;
  try {
    forwarded = isForwarded(err);
    detail = err instanceof Error ? safeString(err.message) : safeString(err);
  } catch (unreadable) {
    detail = `[unreadable: ${safeString(unreadable)}]`;
  }
  if (forwarded) return err as CqrsError;
  return new CqrsError('HANDLER_FAILED', `${name} failed: ${detail}`, { cause: err, handler: name });
}
