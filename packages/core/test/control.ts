import { Control } from './fixtures/messages.js';

/** A fresh control array for the blocking fixtures (see `Control` in fixtures/messages.ts). */
export function newControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Control.length * 4));
}

/** Resolves once `count` handlers have started on `control`; rejects after `timeoutMs`. */
export async function waitForStarts(control: Int32Array, count = 1, timeoutMs = 5000): Promise<void> {
  await waitUntil(
    () => Atomics.load(control, Control.started) >= count,
    timeoutMs,
    `${count} handler start(s)`,
  );
}

/** Lets every handler blocked on `control` return. */
export function releaseAll(control: Int32Array): void {
  Atomics.store(control, Control.release, 1);
  Atomics.notify(control, Control.release);
}

/** Polls `condition` every few ms; rejects after `timeoutMs` naming `what`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
