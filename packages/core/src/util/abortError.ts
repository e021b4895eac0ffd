import { CqrsError, isCqrsError } from '../errors/CqrsError.js';
import type { Abortable } from './callAbort.js';
import { abortReason, isAborted, onAbort } from './callAbort.js';

/**
 * The error a call settles with when it aborts for `reason`: the reason itself when it is a CqrsError (the
 * timeout middleware aborts with `TIMEOUT`), otherwise `ABORTED` with the reason as its cause.
 * @internal
 */
export function abortErrorFor(reason: unknown, name: string): CqrsError {
  if (isCqrsError(reason)) return reason;
  return new CqrsError('ABORTED', `${name}: aborted by the caller`, { cause: reason, handler: name });
}

/** {@link abortErrorFor} the reason of `signal`. @internal */
export function abortError(signal: AbortSignal, name: string): CqrsError {
  return abortErrorFor(signal.reason, name);
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

/** Settles like `pending`, or with the call's abort error as soon as the call aborts (token or signal). @internal */
export function raceCallAbort<T>(pending: Promise<T>, call: Abortable, name: string): Promise<T> {
  if (isAborted(call)) return Promise.reject(abortErrorFor(abortReason(call), name));
  return new Promise<T>((resolve, reject) => {
    const unsubscribe = onAbort(call, () => reject(abortErrorFor(abortReason(call), name)));
    pending.then(
      (value) => {
        unsubscribe();
        resolve(value);
      },
      (err: unknown) => {
        unsubscribe();
        reject(err);
      },
    );
  });
}
