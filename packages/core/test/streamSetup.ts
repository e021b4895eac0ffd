import type { WorkerPoolOptions } from '@cqrs-pool/core';
import { defineStreamQuery, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach } from 'vitest';
import { z } from 'zod';
import { StreamControl } from './fixtures/streamMessages.js';
import { fixtureUrl } from './fixtureUrl.js';

/** The worker module of the streaming fixtures. */
export const streamHandlers = fixtureUrl('streamHandlers');

/** A fresh control array for the streaming fixtures (see `StreamControl`). */
export function newStreamControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(StreamControl.length * 4));
}

/** Resolves once word `index` of `control` is at least `value` (the fixtures notify it); rejects after `timeoutMs`. */
export async function waitForWord(
  control: Int32Array,
  index: number,
  value: number,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const seen = Atomics.load(control, index);
    if (seen >= value) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`timed out waiting for word ${index} to reach ${value} (it is ${seen})`);
    const waited = Atomics.waitAsync(control, index, seen, Math.min(left, 50));
    if (waited.async) await waited.value;
  }
}

/** Reads a stream to its end, bounded: its items, and what it threw (undefined when it ended well). */
export async function readAll<T>(
  stream: AsyncIterable<T>,
  timeoutMs = 20_000,
): Promise<{ items: T[]; error: unknown }> {
  const items: T[] = [];
  let timer: NodeJS.Timeout | undefined;
  const reading = (async () => {
    try {
      for await (const item of stream) items.push(item);
      return undefined;
    } catch (err) {
      return err ?? new Error('threw undefined');
    }
  })();
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream still open after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const error = await Promise.race([reading, timedOut]);
    return { items, error };
  } finally {
    clearTimeout(timer);
  }
}

/** `[0, 1, …, n − 1]`. */
export function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** A pool and a query bus per test, closed after it (bus first, so its streams drain). */
export function usePool(): (
  options?: WorkerPoolOptions,
  bus?: ConstructorParameters<typeof QueryBus>[0],
) => {
  pool: WorkerPool;
  queries: QueryBus;
} {
  let open: { pool: WorkerPool; queries: QueryBus } | undefined;
  afterEach(async () => {
    const current = open;
    open = undefined;
    await current?.queries.close();
    await current?.pool.close();
  });
  return (options = {}, bus = {}) => {
    const pool = new WorkerPool({ threads: 1, ...options });
    const queries = new QueryBus({ ...bus, pool });
    open = { pool, queries };
    return open;
  };
}

/** An inline streaming query of the numbers below n, failing at `failAt` when given. */
export const Numbers = defineStreamQuery('Numbers', {
  input: z.object({ n: z.number().int().min(0), failAt: z.number().optional() }),
  item: z.number(),
});

/** An inline generator that counts what it produced and whether its finally ran (`ended` resolves then). */
export function numbers() {
  const seen = { produced: 0, finallyRan: 0, runs: 0 };
  let ran: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    ran = resolve;
  });
  async function* handler({ n, failAt }: { n: number; failAt?: number | undefined }) {
    seen.runs++;
    try {
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw Object.assign(new Error(`failed at ${i}`), { code: 'E_AT' });
        seen.produced++;
        yield i;
      }
    } finally {
      seen.finallyRan++;
      ran();
    }
  }
  return { seen, handler, ended };
}
