import { inWorker, QueryBus, timeout, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NestedRowsResult,
  type RowShape,
  RowsResult,
  rowShapes,
  rowsValue,
  UncloneableRows,
  uncloneableShapes,
} from './fixtures/resultRowsMessages.js';
import { fixtureUrl } from './fixtureUrl.js';

// A pooled handler's array of rows crosses back as columns and is rebuilt on the main thread
// (itemColumns.ts); every other value crosses as it is. Either way the caller gets what structured clone
// would have given it: these tests compare with structuredClone of the same value, identity included.

const handlers = fixtureUrl('resultRowsHandlers');
let open: { pool: WorkerPool; queries: QueryBus } | undefined;
afterEach(async () => {
  await open?.queries.close();
  await open?.pool.close();
  open = undefined;
});

function setup(threads = 1, withTimeout = false, maxDepth?: number): QueryBus {
  const pool = new WorkerPool({ threads, ...(maxDepth === undefined ? {} : { maxDepth }) });
  const queries = new QueryBus({ pool, middleware: withTimeout ? [timeout(60_000)] : [] });
  queries.registerHandler(RowsResult, inWorker(handlers, 'rowsResult'));
  queries.registerHandler(NestedRowsResult, inWorker(handlers, 'nestedRowsResult'));
  queries.registerHandler(UncloneableRows, inWorker(handlers, 'uncloneableRowsResult'));
  open = { pool, queries };
  return queries;
}

const sizeOf = (shape: RowShape): number => (shape === 'few' ? 3 : 200);

function expectAsCloned(got: unknown, shape: RowShape): void {
  const expected = structuredClone(rowsValue(shape, sizeOf(shape)));
  expect(got).toStrictEqual(expected);
  if (shape === 'holey') expect(100 in (got as unknown[])).toBe(false);
  if (shape === 'extraProperty') expect((got as { total?: number }).total).toBe(200);
  if (shape === 'repeatedRow') expect((got as unknown[])[199]).toBe((got as unknown[])[0]);
  if (shape === 'pageOfTwoLists') {
    const page = got as { first: unknown[]; second: unknown[] };
    expect(page.second[100]).toBe(page.first[50]);
  }
  if (shape === 'pageWithObject') {
    const page = got as { rows: unknown[]; meta: { first: unknown } };
    expect(page.meta.first).toBe(page.rows[0]);
  }
  if (shape === 'linkedRows') {
    const rows = got as { parent: unknown }[];
    expect(rows[150]?.parent).toBe(rows[149]);
  }
  if (Array.isArray(got)) {
    expect(Object.getPrototypeOf(got)).toBe(Array.prototype);
    for (const row of got) {
      if (row !== undefined) expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    }
  }
}

describe('a pooled result that holds rows', () => {
  it.each(rowShapes)('comes back as structured clone gives it: %s', async (shape) => {
    const queries = setup();
    expectAsCloned(await queries.execute(RowsResult, { shape, n: sizeOf(shape) }), shape);
  });

  it('comes back whole from batches and early outcomes, many calls in flight', async () => {
    const queries = setup(1);
    const shapes = Array.from({ length: 120 }, (_, i) => rowShapes[i % rowShapes.length] as RowShape);
    const got = await Promise.all(
      shapes.map((shape, i) =>
        queries.execute(RowsResult, { shape, n: sizeOf(shape), ...(i % 9 === 0 ? { spinMs: 1 } : {}) }),
      ),
    );
    for (const [i, value] of got.entries()) expectAsCloned(value, shapes[i] as RowShape);
  });

  it('comes back whole when the calls can be cancelled (outcomes held in shared memory meanwhile)', async () => {
    const queries = setup(2, true);
    const shapes = Array.from({ length: 80 }, (_, i) => rowShapes[i % rowShapes.length] as RowShape);
    const got = await Promise.all(
      shapes.map((shape) => queries.execute(RowsResult, { shape, n: sizeOf(shape) })),
    );
    for (const [i, value] of got.entries()) expectAsCloned(value, shapes[i] as RowShape);
  });

  it('comes back to a handler that asked for it from its thread', async () => {
    const queries = setup(2);
    for (const shape of ['rows', 'withDatesAndLists', 'holey', 'linkedRows'] as const) {
      expectAsCloned(await queries.execute(NestedRowsResult, { shape, n: sizeOf(shape) }), shape);
    }
  });

  it.each(uncloneableShapes)(
    'fails with NOT_CLONEABLE when structured clone would refuse it, and its thread lives on: %s',
    async (shape) => {
      const queries = setup(1);
      const rows = await queries.execute(RowsResult, { shape: 'rows', n: 40 });
      await expect(queries.execute(UncloneableRows, { shape })).rejects.toMatchObject({
        code: 'NOT_CLONEABLE',
      });
      expectAsCloned(await queries.execute(RowsResult, { shape: 'rows', n: 200 }), 'rows');
      expect(rows).toHaveLength(40);
    },
  );

  it('is held to the pool’s maxDepth as any result: rows holding lists are three levels deep', async () => {
    const queries = setup(1, false, 2);
    await expect(queries.execute(RowsResult, { shape: 'withDatesAndLists', n: 200 })).rejects.toMatchObject({
      code: 'NOT_CLONEABLE',
    });
    // Two levels: an array of rows of primitives.
    expectAsCloned(await queries.execute(RowsResult, { shape: 'rows', n: 200 }), 'rows');
  });
});
