/**
 * A pooled query that returns rows (`{ id, name }`, as a list or a report query does): what the main thread
 * spends per row taking the result in, and calls per second, for cqrs-pool and raw `piscina.run` returning
 * the same value, at 100, 1,000 and 10,000 rows — as an array, and as a page (`{ rows, total }`).
 * Structured clone rebuilds each row key by key on the main thread; cqrs-pool sends an array of rows as
 * columns and rebuilds it with plain stores, a page's arrays too (resultColumns.ts). Main-thread time is the event loop's active time (`eventLoopUtilization`)
 * over the calls. Two callers per thread in a closed loop; rounds interleave the contenders, their order
 * rotating; medians of rounds.
 *
 *   node build.mjs --fast && node dist/bench/resultRows.bench.js [--rounds 5] [--rows-per-round 2000000]
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { ArrayRows, PagedRows, type Row, type RowPage } from './handlers/rows.js';
import { formatNs, median, rotated, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const rowsPerRound = arg('--rows-per-round', 2_000_000);
const threads = availableParallelism();
const callers = 2 * threads;
const sizes = [100, 1000, 10_000];
const handlers = new URL('./handlers/', import.meta.url);

type Shape = 'array' | 'page';
const shapes: Shape[] = ['array', 'page'];

interface Running {
  call(n: number, shape: Shape): Promise<Row[] | RowPage>;
  close(): Promise<void>;
}

async function ours(): Promise<Running> {
  const pool = new WorkerPool({ threads });
  const queries = new QueryBus({ pool });
  queries.registerHandler(ArrayRows, inWorker(new URL('rows.js', handlers), 'arrayRows'));
  queries.registerHandler(PagedRows, inWorker(new URL('rows.js', handlers), 'pagedRows'));
  await queries.ready();
  return {
    call: (n, shape) =>
      shape === 'array' ? queries.execute(ArrayRows, { n }) : queries.execute(PagedRows, { n }),
    async close() {
      await queries.close();
      await pool.close();
    },
  };
}

async function piscina(): Promise<Running> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('rowsPlain.js', handlers)),
    minThreads: threads,
    maxThreads: threads,
  });
  return { call: (n, shape) => pool.run({ n, paged: shape === 'page' }), close: () => pool.destroy() };
}

interface Sample {
  perSec: number;
  /** Main-thread active time per row, ns. */
  mainNsPerRow: number;
}

/** `callers` callers share `calls` calls of `n` rows, each awaiting its call before the next. */
async function closedLoop(running: Running, n: number, shape: Shape, calls: number): Promise<Sample> {
  let started = 0;
  let sum = 0;
  const elu = performance.eventLoopUtilization();
  const began = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (started < calls) {
        started++;
        const value = await running.call(n, shape);
        const rows = Array.isArray(value) ? value : value.rows;
        sum += rows.length + (rows[n - 1]?.id ?? Number.NaN);
      }
    }),
  );
  const ms = performance.now() - began;
  const active = performance.eventLoopUtilization(elu).active;
  if (sum !== calls * (2 * n - 1)) throw new Error(`rows lost: ${sum}`);
  return { perSec: (calls * 1000) / ms, mainNsPerRow: (active * 1e6) / (calls * n) };
}

const contenders = [
  { key: 'ours', name: 'cqrs-pool (QueryBus, inWorker)', start: ours },
  { key: 'piscina', name: 'raw piscina.run', start: piscina },
];
const samples = new Map<string, Sample[]>();
for (let round = 1; round <= rounds; round++) {
  for (const contender of rotated(contenders, round)) {
    const running = await contender.start();
    for (const shape of shapes) {
      for (const n of sizes) {
        const calls = Math.max(callers * 4, Math.round(rowsPerRound / n));
        await closedLoop(running, n, shape, Math.ceil(calls / 4)); // warm-up: JIT on both sides
        const key = `${contender.key}@${shape}${n}`;
        samples.set(key, [...(samples.get(key) ?? []), await closedLoop(running, n, shape, calls)]);
      }
    }
    await running.close();
  }
  console.log(`round ${round}/${rounds} done`);
}

const values: Record<string, number> = { threads };
const rows: string[][] = [];
const med = (key: string, field: keyof Sample): number =>
  median((samples.get(key) ?? []).map((s) => s[field]));
for (const shape of shapes) {
  for (const n of sizes) {
    const base = med(`piscina@${shape}${n}`, 'mainNsPerRow');
    const baseRate = med(`piscina@${shape}${n}`, 'perSec');
    for (const contender of contenders) {
      const key = `${contender.key}@${shape}${n}`;
      const perRow = med(key, 'mainNsPerRow');
      const rate = med(key, 'perSec');
      // Value names: `oursNsPerRow10000` (an array), `oursPageNsPerRow10000` (a page).
      const name = shape === 'array' ? contender.key : `${contender.key}Page`;
      values[`${name}NsPerRow${n}`] = perRow;
      values[`${name}PerSec${n}`] = rate;
      rows.push([
        shape === 'array' ? 'array' : '{ rows, total }',
        n.toLocaleString('en-US'),
        contender.name,
        formatNs(perRow),
        `×${(perRow / base).toFixed(2)}`,
        `${Math.round(rate).toLocaleString('en-US')}/s`,
        `×${(rate / baseRate).toFixed(2)}`,
      ]);
    }
  }
}
values.mainPerRowRatio10k = (values.oursNsPerRow10000 as number) / (values.piscinaNsPerRow10000 as number);
values.mainPerRowRatio10kPage =
  (values.oursPageNsPerRow10000 as number) / (values.piscinaPageNsPerRow10000 as number);
writeResult({
  name: 'resultRows',
  tables: [
    {
      title: `A query returning an array of rows, ${threads} threads, ${callers} callers in a closed loop`,
      columns: ['result', 'rows', 'contender', 'main thread per row', 'vs piscina', 'calls', 'vs piscina'],
      rows,
      note:
        'Main thread per row: the event loop’s active time over the calls, divided by the rows received. ' +
        `${rowsPerRound.toLocaleString('en-US')} rows per size and round; medians of ${rounds} rounds, contenders interleaved.`,
    },
  ],
  values,
});
for (const r of rows) console.log(r.join(' | '));
