import type { AbortListener, CancelToken } from './CancelToken.js';

/**
 * What can abort a call: a `timeout()`'s token (which also follows the caller's signal), else the caller's
 * signal. Read through these helpers, not `call.signal`, in the terminals: reading `call.signal` under a
 * timeout makes a real AbortSignal (see CancelToken.ts).
 * @internal
 */
export interface Abortable {
  readonly signal: AbortSignal | undefined;
  readonly cancel: CancelToken | undefined;
}

/** True when `call` can be aborted at all. */
export function canAbort(call: Abortable): boolean {
  return call.cancel !== undefined || call.signal !== undefined;
}

/** True once the call was aborted. */
export function isAborted(call: Abortable): boolean {
  return call.cancel !== undefined ? call.cancel.aborted : call.signal?.aborted === true;
}

/** Why the call was aborted (a `TIMEOUT` CqrsError, the caller's reason, …). */
export function abortReason(call: Abortable): unknown {
  return call.cancel !== undefined ? call.cancel.reason : call.signal?.reason;
}

/** Calls `listener` once when the call aborts; returns the unsubscribe. Not called if it already has. */
export function onAbort(call: Abortable, listener: () => void): () => void {
  if (!canAbort(call) || isAborted(call)) return noop;
  listenAbort(call, listener);
  return () => offAbort(call, listener);
}

/**
 * Tells `listener` once when the call aborts (not if it already has), as `onAbort` does; a listener object
 * (`handleEvent`) needs no closure per call. `offAbort` takes it off.
 */
export function listenAbort(call: Abortable, listener: AbortListener): void {
  if (call.cancel !== undefined) call.cancel.listen(listener);
  else if (call.signal !== undefined && !call.signal.aborted) {
    call.signal.addEventListener('abort', listener, { once: true });
  }
}

/** Takes off a listener `listenAbort` put on. */
export function offAbort(call: Abortable, listener: AbortListener): void {
  if (call.cancel !== undefined) call.cancel.unlisten(listener);
  else call.signal?.removeEventListener('abort', listener);
}

function noop(): void {}

/**
 * The AbortSignal that aborts when this call is cancelled — by the caller, or by a `timeout()` around it —
 * made on first use. Inside a `timeout()`, `call.signal` is still the caller's signal (making a signal per
 * call costs ~3.4 µs on Node 20): middleware that must see timeouts as aborts use this instead.
 */
export function callSignal(call: Abortable): AbortSignal | undefined {
  return call.cancel !== undefined ? call.cancel.signal : call.signal;
}
