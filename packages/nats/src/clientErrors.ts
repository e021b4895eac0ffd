import { CqrsError, isCqrsError } from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';

// The errors a RemoteClient settles calls with on its own, not read from a reply. All internal.

/** A refusal before anything was sent, marked so the calling bus passes it on as it is. */
export function fail(
  code: 'CLOSED' | 'OVERLOADED' | 'NOT_CLONEABLE',
  text: string,
  name: string,
  cause?: unknown,
): Promise<never> {
  const details = cause === undefined ? { handler: name } : { handler: name, cause };
  return Promise.reject(markForwarded(new CqrsError(code, text, details)));
}

/** As core settles an aborted call: the reason itself when it is a CqrsError (a timeout's `TIMEOUT`), else `ABORTED`. */
export function abortError(signal: AbortSignal, name: string): CqrsError {
  const reason: unknown = signal.reason;
  if (isCqrsError(reason)) return reason;
  return new CqrsError('ABORTED', `${name}: aborted by the caller`, { cause: reason, handler: name });
}

/** A `remote()` call whose caller gave up (its bus already settled the caller, with its own error). */
export function abandoned(name: string): CqrsError {
  return new CqrsError('ABORTED', `${name}: abandoned by the caller`, { handler: name });
}

export function timedOut(name: string, timeoutMs: number): CqrsError {
  return new CqrsError('TIMEOUT', `${name}: no reply within ${timeoutMs} ms`, { handler: name });
}

/** `maxInFlight` calls and streams are out: a refusal before anything was sent (marked, as by {@link fail}). */
export function overloaded(name: string, maxInFlight: number): CqrsError {
  return markForwarded(
    new CqrsError('OVERLOADED', `${name}: ${maxInFlight} remote calls in flight already`, { handler: name }),
  );
}

export function closedError(name: string): CqrsError {
  return new CqrsError('CLOSED', `${name}: the remote client is closed`, { handler: name });
}

export function unavailable(name: string, reason: string, cause?: unknown): CqrsError {
  const details = cause === undefined ? { handler: name } : { handler: name, cause };
  return new CqrsError('UNAVAILABLE', `${name}: ${reason}`, details);
}

export function notCloneable(name: string, reason: string, cause?: unknown): CqrsError {
  const details = cause === undefined ? { handler: name } : { handler: name, cause };
  return new CqrsError('NOT_CLONEABLE', `${name}: ${reason}`, details);
}

export function noResponders(name: string): CqrsError {
  return new CqrsError('UNAVAILABLE', `${name}: no server is serving it (no responders on NATS)`, {
    handler: name,
  });
}

export function otherCodec(name: string, replied: string, own: string): CqrsError {
  return new CqrsError('NOT_CLONEABLE', `${name}: the reply is in ${replied}, this client speaks ${own}`, {
    handler: name,
  });
}

export function publishError(err: unknown, name: string): CqrsError {
  const kind = (err as { name?: unknown } | null)?.name;
  if (kind === 'ClosedConnectionError' || kind === 'DrainingConnectionError') {
    return new CqrsError('UNAVAILABLE', `${name}: the NATS connection is closed or draining`, {
      cause: err,
      handler: name,
    });
  }
  // Chiefly a body over the server's max_payload: the input is what cannot be sent.
  return new CqrsError('NOT_CLONEABLE', `${name}: the request cannot be sent: ${message(err)}`, {
    cause: err,
    handler: name,
  });
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
