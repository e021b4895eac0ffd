import { CqrsError, isCqrsError } from '../errors/CqrsError.js';

/**
 * The error a call settles with when `signal` aborts: the signal's reason when it is a CqrsError (the
 * timeout middleware aborts with `TIMEOUT`), otherwise `ABORTED` with the reason as its cause.
 * @internal
 */
export function abortError(signal: AbortSignal, name: string): CqrsError {
  const reason: unknown = signal.reason;
  if (isCqrsError(reason)) return reason;
  return new CqrsError('ABORTED', `${name}: aborted by the caller`, { cause: reason, handler: name });
}

/** Settles like `pending`, or with {@link abortError} as soon as `signal` aborts. @internal */
export function raceAbort<T>(pending: Promise<T>, signal: AbortSignal, name: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, name));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, name));
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
