import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { EarlyOutcomes, HelloMessage, NestedDispatchApi, StreamChunk } from './protocol.js';
import { HELLO } from './protocol.js';
import { ThreadLinks } from './ThreadLinks.js';

const api = {} as NestedDispatchApi;

/** A thread's end of its links, as handlerHost.ts makes them, and the hello the main thread gets. */
function thread(threadId: number) {
  const bus = new MessageChannel();
  const run = new MessageChannel();
  const hello: HelloMessage = { [HELLO]: true, threadId, bus: bus.port2, run: run.port2 };
  const close = (): void => {
    bus.port1.close();
    run.port1.close();
  };
  return { hello, runPort: run.port1, close };
}

const early: EarlyOutcomes = {
  early: true,
  c: [3],
  g: [7],
  o: { f: [1], v: [42] },
};

describe('ThreadLinks', () => {
  // piscina says a thread is gone (its 'workerDestroy') as soon as it exits — e.g. terminated for a call
  // aborted after it was posted — which may be before the main thread has read what the thread posted on its
  // run port just before: a batch's early outcomes, a stream's last chunk. Those calls would never settle.
  it('delivers what a thread posted on its run port before it went, then drops its links', async () => {
    const got: unknown[] = [];
    let dropped: (threadId: number) => void = () => {};
    const droppedThread = new Promise<number>((resolve) => (dropped = resolve));
    const links = new ThreadLinks(
      api,
      (outcomes) => got.push(outcomes),
      (chunk: StreamChunk) => got.push(chunk),
      (threadId) => dropped(threadId),
    );
    const t = thread(1);
    links.add(t.hello);
    const chunk: StreamChunk = { sc: 5, g: 1, v: [1, 2], end: { ok: true } };
    t.runPort.postMessage(early);
    t.runPort.postMessage(chunk);
    // The thread exits, and piscina says so in the same turn: its messages are not delivered yet.
    t.close();
    links.gone(1);
    expect(links.has(1)).toBe(true);
    await expect(droppedThread).resolves.toBe(1);
    expect(got).toEqual([early, chunk]);
    expect(links.has(1)).toBe(false);
  });

  it('fails a nested call still running on a thread that went', async () => {
    const links = new ThreadLinks(api, () => {});
    const t = thread(2);
    links.add(t.hello);
    const nested = links.runOn(2, { m: 0, x: 'f', n: 'N', i: undefined, md: {}, c: 0, g: 0, s: -1, d: 1 });
    t.close();
    links.gone(2);
    await expect(nested).rejects.toMatchObject({ code: 'WORKER_CRASHED' });
  });
});
