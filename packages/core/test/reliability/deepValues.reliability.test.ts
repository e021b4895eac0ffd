/**
 * Values nested deeper than a thread can decode. Structured clone encodes them (its writer copes with depth a
 * reader cannot), but decoding on the other side overflows the stack: the message is dropped there, so a call
 * that let one cross would never settle. Every such value must fail its own call with NOT_CLONEABLE before it
 * is posted, whichever way it travels — result, input, nested input, nested result — and the pool goes on.
 */
import type { Middleware } from '@cqrs-pool/core';
import { defineQuery, inWorker, isCqrsError, QueryBus, timeout, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DeepNested, DeepResult, Echo, ThrowDeep } from '../fixtures/reliabilityMessages.js';
import { fixtureUrl } from '../fixtureUrl.js';
import { rejectionWith } from '../rejectionWith.js';

const handlers = fixtureUrl('reliabilityHandlers');
const InlineDeep = defineQuery('InlineDeep', {
  input: z.object({ depth: z.number(), value: z.unknown() }),
  output: z.unknown(),
});
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

function nestedObject(depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < depth; i++) {
    const child: Record<string, unknown> = {};
    node.c = child;
    node = child;
  }
  return root;
}

function setup(options: ConstructorParameters<typeof WorkerPool>[0] = {}, middleware: Middleware[] = []) {
  pool = new WorkerPool({ threads: 1, ...options });
  const queries = new QueryBus({ pool, middleware });
  queries.registerHandler(DeepResult, inWorker(handlers, 'deepResult'));
  queries.registerHandler(DeepNested, inWorker(handlers, 'deepNested'));
  queries.registerHandler(Echo, inWorker(handlers, 'echo'));
  queries.registerHandler(ThrowDeep, inWorker(handlers, 'throwDeep'));
  queries.registerHandler(InlineDeep, ({ depth }) => nestedObject(depth));
  return { pool, queries };
}

describe('a value nested too deep to cross a thread boundary', () => {
  it.each([2_000, 5_000, 8_000])(
    'returned %i levels deep by a worker handler fails its call with NOT_CLONEABLE; the thread goes on',
    async (depth) => {
      const { pool: p, queries } = setup();
      const err = await rejectionWith(queries.execute(DeepResult, { depth }), 'NOT_CLONEABLE');
      expect(err.message).toMatch(/nested deeper than 1000 levels/);
      // The only thread was not lost: the next call runs on it.
      await expect(queries.execute(DeepResult, { depth: 3 })).resolves.toEqual(nestedObject(3));
      expect(p.threads).toBe(1);
      const m = queries.getMetrics().handlers.DeepResult;
      expect(m).toMatchObject({ executions: 2, failures: 1, inFlight: 0 });
      expect(m?.failuresByCode).toEqual({ NOT_CLONEABLE: 1 });
      await queries.close();
      await p.close();
    },
  );

  it('under timeout() still fails with NOT_CLONEABLE, not TIMEOUT', async () => {
    const { queries } = setup({}, [timeout(10_000)]);
    await rejectionWith(queries.execute(DeepResult, { depth: 3_000 }), 'NOT_CLONEABLE');
    await expect(queries.execute(DeepResult, { depth: 1 })).resolves.toEqual(nestedObject(1));
  });

  it('as an input is refused before it is posted, also to a thread with a 1 MB stack', async () => {
    const { pool: p, queries } = setup({ resourceLimits: { stackSizeMb: 1 } });
    await rejectionWith(queries.execute(Echo, nestedObject(2_000)), 'NOT_CLONEABLE');
    // Arrays, Maps and Sets count as levels too.
    let list: unknown[] = [];
    const rootList = list;
    for (let i = 0; i < 1_500; i++) {
      const inner: unknown[] = [];
      list.push(inner);
      list = inner;
    }
    await rejectionWith(queries.execute(Echo, rootList), 'NOT_CLONEABLE');
    let map = new Map<string, unknown>();
    const rootMap = map;
    for (let i = 0; i < 1_500; i++) {
      const inner = new Map<string, unknown>();
      map.set('k', inner);
      map = inner;
    }
    await rejectionWith(queries.execute(Echo, rootMap), 'NOT_CLONEABLE');
    await expect(queries.execute(Echo, nestedObject(500))).resolves.toEqual(nestedObject(500));
    expect(p.threads).toBe(1);
    expect(queries.getMetrics().handlers.FuzzEcho).toMatchObject({ executions: 4, failures: 3, inFlight: 0 });
  });

  it('is not mistaken for depth when the value is wide, shared or cyclic', async () => {
    const { queries } = setup();
    const shared = nestedObject(10);
    const wide = Array.from({ length: 20_000 }, (_, i) => ({ i, shared }));
    await expect(queries.execute(Echo, wide)).resolves.toHaveLength(20_000);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const back = (await queries.execute(Echo, cyclic)) as Record<string, unknown>;
    expect(back.self).toBe(back);
    // A diamond chain: each level points twice at the next, 2^60 paths, 120 objects.
    let node: Record<string, unknown> = {};
    for (let i = 0; i < 60; i++) node = { a: node, b: node };
    await expect(queries.execute(Echo, node)).resolves.toBeDefined();
  });

  it('returned by an inline handler to a worker handler fails the nested call, not the thread', async () => {
    const { pool: p, queries } = setup();
    const outcome = await queries.execute(DeepNested, { name: 'InlineDeep', depth: 2_000, inputDepth: 0 });
    expect(outcome).toMatchObject({ ok: false, code: 'NOT_CLONEABLE' });
    const fine = await queries.execute(DeepNested, { name: 'InlineDeep', depth: 20, inputDepth: 0 });
    expect(fine).toEqual({ ok: true, depth: 20 });
    expect(p.threads).toBe(1);
  });

  it('sent by a worker handler as a nested input fails that nested call with NOT_CLONEABLE', async () => {
    const { queries } = setup();
    const outcome = await queries.execute(DeepNested, { name: 'InlineDeep', depth: 1, inputDepth: 3_000 });
    expect(outcome).toMatchObject({ ok: false, code: 'NOT_CLONEABLE' });
    // A nested worker handler's result takes the run port back to the thread: the same bound holds there.
    const viaWorker = await queries.execute(DeepNested, { name: 'DeepResult', depth: 2_500, inputDepth: 0 });
    expect(viaWorker).toMatchObject({ ok: false, code: 'NOT_CLONEABLE' });
  });

  it('thrown by a worker handler fails its call with HANDLER_FAILED, the cause describing it', async () => {
    const { pool: p, queries } = setup();
    for (const depth of [1_200, 1_600, 5_000]) {
      const err = await rejectionWith(queries.execute(ThrowDeep, { depth }), 'HANDLER_FAILED');
      expect(String((err.cause as Error | string | undefined) ?? '')).not.toBe('');
    }
    await expect(queries.execute(DeepResult, { depth: 2 })).resolves.toEqual(nestedObject(2));
    expect(p.threads).toBe(1);
    expect(queries.getMetrics().handlers.ThrowDeep).toMatchObject({
      executions: 3,
      failures: 3,
      inFlight: 0,
    });
  });

  it('follows options.maxDepth, which is checked', async () => {
    const { queries } = setup({ maxDepth: 10 });
    await rejectionWith(queries.execute(Echo, nestedObject(11)), 'NOT_CLONEABLE');
    await expect(queries.execute(Echo, nestedObject(9))).resolves.toEqual(nestedObject(9));
    await rejectionWith(queries.execute(DeepResult, { depth: 11 }), 'NOT_CLONEABLE');
    for (const maxDepth of [0, -1, 1.5, Number.NaN, '10']) {
      expect(() => new WorkerPool({ maxDepth: maxDepth as number })).toThrow(
        expect.objectContaining({ code: 'INVALID_REGISTRATION', message: expect.stringMatching(/maxDepth/) }),
      );
    }
  });

  it('leaves close() free to finish at once', async () => {
    const { pool: p, queries } = setup();
    const calls = [1_800, 4_000, 7_000].map((depth) =>
      queries.execute(DeepResult, { depth }).then(
        () => 'ok',
        (err: unknown) => (isCqrsError(err) ? err.code : 'other'),
      ),
    );
    expect(await Promise.all(calls)).toEqual(['NOT_CLONEABLE', 'NOT_CLONEABLE', 'NOT_CLONEABLE']);
    await queries.close();
    await p.close();
    expect(p.inFlight).toBe(0);
  });
});
