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
  // Most tokens have one listener (the pool, or the inline terminal): it needs no array.
  private first: AbortListener | undefined;
  private more: AbortListener[] | undefined;
  private controller: AbortController | undefined;

  /** Aborts once: tells every listener, in the order they came, and the signal if one was made. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const first = this.first;
    const more = this.more;
    this.first = undefined;
    this.more = undefined;
    if (first !== undefined) tell(first);
    if (more !== undefined) for (const listener of more) tell(listener);
  }

  /**
   * Tells `listener` once when the token aborts (not if it already has). A listener object (`handleEvent`)
   * lets a caller that keeps its state in an object subscribe without a closure; `unlisten` takes it off.
   */
  listen(listener: AbortListener): void {
    if (this.aborted) return;
    if (this.first === undefined && this.more === undefined) this.first = listener;
    else if (this.more === undefined) this.more = [listener];
    else this.more.push(listener);
  }

  /** Takes `listener` off; nothing when it is not on. */
  unlisten(listener: AbortListener): void {
    if (this.first === listener) {
      this.first = this.more?.shift();
      if (this.more?.length === 0) this.more = undefined;
      return;
    }
    const more = this.more;
    if (more === undefined) return;
    const at = more.indexOf(listener);
    if (at >= 0) more.splice(at, 1);
    if (more.length === 0) this.more = undefined;
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

/** An abort listener that is an object: its state needs no closure per call (EventTarget's form). */
export interface AbortHandler {
  handleEvent(): void;
}

/** What is told of an abort: a function, or an object whose `handleEvent` is called (as EventTarget does). */
export type AbortListener = (() => void) | AbortHandler;

function tell(listener: AbortListener): void {
  if (typeof listener === 'function') listener();
  else listener.handleEvent();
}
