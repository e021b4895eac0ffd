import type { WorkerPool } from '@cqrs-pool/core';
import { CommandBus, inWorker } from '@cqrs-pool/core';
import { Block, Control } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';

/**
 * How long a test waits for an event before it calls it a hang. Generous on purpose: the bound only turns a
 * hang into a failure that names what never happened; a busy machine stalls for seconds, and must pass.
 */
export const HANG_MS = 15_000;

/** A fresh control array for the blocking fixtures (see `Control` in fixtures/messages.ts). */
export function newControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Control.length * 4));
}

/** Resolves once `count` handlers have started on `control`; rejects after `timeoutMs` (a hang). */
export async function waitForStarts(control: Int32Array, count = 1, timeoutMs = HANG_MS): Promise<void> {
  await waitUntil(
    () => Atomics.load(control, Control.started) >= count,
    timeoutMs,
    `${count} handler start(s)`,
  );
}

/**
 * Blocks the main thread (Atomics.wait) until `count` handlers have started on `control`. While it blocks,
 * no timer of this thread can fire: a deadline armed before the call (a `timeout()`) cannot fall due before
 * the handler has started, however slow the machine. Only for a call already handed to an idle thread: one
 * that waits in the pool's queue needs this thread to run before it is posted, and so fails here after
 * `timeoutMs` with an error that says so.
 */
export function blockUntilStarted(control: Int32Array, count = 1, timeoutMs = HANG_MS): void {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const started = Atomics.load(control, Control.started);
    if (started >= count) return;
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new Error(
        `${count} handler start(s) not seen after ${timeoutMs} ms of blocking the main thread (was the call queued rather than posted?)`,
      );
    }
    Atomics.wait(control, Control.started, started, left);
  }
}

/** Lets every handler blocked on `control` return. */
export function releaseAll(control: Int32Array): void {
  Atomics.store(control, Control.release, 1);
  Atomics.notify(control, Control.release);
}

/**
 * Resolves once `threads` threads of `pool` take calls, each holding one blocking call at the same time (so
 * they are distinct threads). A thread's start-up is the machine's speed: a test that needs calls to spread
 * over every thread waits for this instead of hoping they all started in time. Uses a bus of its own.
 */
export async function allThreadsUp(pool: WorkerPool, threads: number): Promise<void> {
  const bus = new CommandBus({ pool });
  bus.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'));
  const control = newControl();
  const held = Array.from({ length: threads }, () => bus.execute(Block, { control }));
  try {
    await waitForStarts(control, threads);
  } finally {
    releaseAll(control);
  }
  await Promise.all(held);
  await bus.close();
}

/** Polls `condition` every few ms; rejects after `timeoutMs` naming `what`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
