/**
 * A one-shot cancellation that costs almost nothing until someone needs an `AbortSignal` of it.
 *
 * Why not an AbortController per call: on Node 20, constructing an `AbortSignal` costs ~3.4 µs (measured:
 * `new AbortController().signal`), more than the rest of a dispatch ten times over. `timeout()` needs a
 * cancellation per call, and the pool and the inline terminal only need to be told — so they subscribe to
 * this token, and a real `AbortSignal` is made only when a handler or a middleware reads `call.signal`.
 * @internal
 */
export class CancelToken {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;
  private controller: AbortController | undefined;

  /** Aborts once: tells every subscriber, and the signal if one was made. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }

  /** Calls `listener` once when the token aborts (not if it already has); returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    if (this.aborted) return noop;
    this.listeners ??= [];
    this.listeners.push(listener);
    return () => {
      const list = this.listeners;
      if (list === undefined) return;
      const at = list.indexOf(listener);
      if (at >= 0) list.splice(at, 1);
    };
  }

  /** An `AbortSignal` that follows this token, made on first use. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

function noop(): void {}
