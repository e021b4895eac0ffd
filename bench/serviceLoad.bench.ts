/**
 * The load a service gives a pool: a closed loop of a few calls per thread, each caller waiting for its
 * result before it sends the next (not a bulk submission). For CPU-bound calls of 0.2, 1 and 5 ms, side by
 * side in one run: our bus (defaults), our bus with batching off, raw `piscina.run` (defaults) — all with
 * the machine's thread count — and the limit: the same number of bare `worker_threads` running the same
 * calls back to back with no messaging. Throughput, each call's latency (p50, p99, max), and the main
 * thread's own CPU time per call (Linux): what the callers' thread spends on each call — on few cores it
 * comes out of the cores the pool's threads would use, which bounds every pool below the bare threads.
 * Rounds interleave the contenders and the bare threads, their order rotating each round (none always runs
 * first); the table holds medians of rounds.
 *
 *   node build.mjs --fast && node dist/bench/serviceLoad.bench.js [--rounds 5] [--seconds 2]
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CommandBus, inWorker, WorkerPool, type WorkerPoolOptions } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { Burn } from './handlers/burn.js';
import { burn } from './handlers/burnWork.js';
import { mainThreadCpuMs } from './mainThreadCpu.js';
import { median, quantile, rotated, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const seconds = arg('--seconds', 2);
const threads = availableParallelism();
const handlers = new URL('./handlers/', import.meta.url);

/** Iterations of `burn` that take about `ms` on this machine (median of several tries). */
function calibrate(ms: number): number {
  const probe = 200_000;
  for (let i = 0; i < 5; i++) burn(probe);
  const perIteration = median(
    Array.from({ length: 9 }, () => {
      const t = performance.now();
      burn(probe);
      return (performance.now() - t) / probe;
    }),
  );
  return Math.max(1, Math.round(ms / perIteration));
}

interface Sample {
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The main thread's CPU time per call, µs (NaN where it cannot be read). */
  mainCpuUs: number;
}

interface Running {
  run(iterations: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Keeps `inFlight` callers in a closed loop for `ms`, timing each call. */
async function drive(pool: Running, iterations: number, inFlight: number, ms: number): Promise<Sample> {
  const latencies: number[] = [];
  const cpuBefore = mainThreadCpuMs();
  const started = performance.now();
  const deadline = started + ms;
  const caller = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await pool.run(iterations);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, caller));
  const elapsed = performance.now() - started;
  const cpuAfter = mainThreadCpuMs();
  return {
    mainCpuUs:
      cpuBefore === undefined || cpuAfter === undefined
        ? Number.NaN
        : ((cpuAfter - cpuBefore) * 1000) / latencies.length,
    perSec: (latencies.length / elapsed) * 1000,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: Math.max(...latencies),
  };
}

async function ours(options: WorkerPoolOptions): Promise<Running> {
  const pool = new WorkerPool({ threads, ...options });
  const bus = new CommandBus({ pool });
  bus.registerHandler(Burn, inWorker(new URL('burn.js', handlers), 'burn'));
  await bus.ready();
  return {
    run: (iterations) => bus.execute(Burn, { iterations }),
    async close() {
      await bus.close();
      await pool.close();
    },
  };
}

async function piscina(niceIncrement = 0): Promise<Running> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('burnPlain.js', handlers)),
    minThreads: threads,
    maxThreads: threads,
    niceIncrement,
  });
  return { run: (iterations) => pool.run({ iterations }), close: () => pool.destroy() };
}

/** The limit: `threads` bare threads running calls back to back for `ms`; calls per second in all. */
async function bare(iterations: number, ms: number): Promise<number> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(fileURLToPath(new URL('burnLoop.js', handlers)), { workerData: { iterations, ms } }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const started = performance.now();
  const counts = await Promise.all(
    workers.map((w) => {
      const done = new Promise<{ calls: number }>((resolve) => w.once('message', resolve));
      w.postMessage('go');
      return done;
    }),
  );
  const elapsed = performance.now() - started;
  await Promise.all(workers.map((w) => w.terminate()));
  return (counts.reduce((sum, c) => sum + c.calls, 0) / elapsed) * 1000;
}

const contenders: { name: string; key: string; start: () => Promise<Running> }[] = [
  { name: 'cqrs-pool (defaults)', key: 'ours', start: () => ours({}) },
  { name: 'cqrs-pool (batching: false)', key: 'oursNoBatching', start: () => ours({ batching: false }) },
  { name: 'cqrs-pool (niceIncrement: 10)', key: 'oursNice10', start: () => ours({ niceIncrement: 10 }) },
  { name: 'raw piscina.run (defaults)', key: 'piscina', start: () => piscina() },
  { name: 'raw piscina.run (niceIncrement: 10)', key: 'piscinaNice10', start: () => piscina(10) },
];
// CPU per call and calls in flight per thread (the rows on 2 threads: 6, 3, 6 and 4 in flight).
const rows = [
  { cpuMs: 0.2, perThread: 3 },
  { cpuMs: 1, perThread: 1.5 },
  { cpuMs: 1, perThread: 3 },
  { cpuMs: 5, perThread: 2 },
].map((r) => ({ ...r, inFlight: Math.max(1, Math.round(r.perThread * threads)) }));
const iterationsOf = new Map(rows.map((r) => [r.cpuMs, calibrate(r.cpuMs)]));
const samples = new Map<string, Sample[]>();
const limits = new Map<string, number[]>();
const rowKey = (r: (typeof rows)[number]) => `${r.cpuMs}ms x${r.inFlight}`;

for (let round = 1; round <= rounds; round++) {
  for (const row of rows) {
    const iterations = iterationsOf.get(row.cpuMs) as number;
    const key = rowKey(row);
    // The bare threads take their turn among the contenders, so no contender always runs right after them.
    for (const contender of rotated([undefined, ...contenders], round)) {
      if (contender === undefined) {
        limits.set(key, [...(limits.get(key) ?? []), await bare(iterations, seconds * 1000)]);
        continue;
      }
      const pool = await contender.start();
      await drive(pool, iterations, row.inFlight, 300); // warm-up
      const sample = await drive(pool, iterations, row.inFlight, seconds * 1000);
      await pool.close();
      const k = `${contender.key} ${key}`;
      samples.set(k, [...(samples.get(k) ?? []), sample]);
    }
    console.log(`round ${round}/${rounds}: ${key} done`);
  }
}

const mid = (list: Sample[] | undefined): Sample => ({
  perSec: median((list ?? []).map((s) => s.perSec)),
  p50Ms: median((list ?? []).map((s) => s.p50Ms)),
  p99Ms: median((list ?? []).map((s) => s.p99Ms)),
  maxMs: median((list ?? []).map((s) => s.maxMs)),
  mainCpuUs: median((list ?? []).map((s) => s.mainCpuUs)),
});
const values: Record<string, number> = { threads };
const tableRows: string[][] = [];
for (const row of rows) {
  const key = rowKey(row);
  const limit = median(limits.get(key) ?? []);
  // Named per thread, so the targets read the same values on any core count.
  const tag = `${String(row.cpuMs).replace('.', '_')}msX${String(row.perThread).replace('.', '_')}PerThread`;
  values[`limit_${tag}PerSec`] = limit;
  for (const contender of contenders) {
    const s = mid(samples.get(`${contender.key} ${key}`));
    values[`${contender.key}_${tag}PerSec`] = s.perSec;
    values[`${contender.key}_${tag}P99Ms`] = s.p99Ms;
    if (Number.isFinite(s.mainCpuUs)) values[`${contender.key}_${tag}MainCpuUs`] = s.mainCpuUs;
    tableRows.push([
      `${row.cpuMs} ms, ${row.inFlight} in flight`,
      contender.name,
      `${Math.round(s.perSec).toLocaleString('en-US')}/s`,
      `${((s.perSec / limit) * 100).toFixed(1)} %`,
      `${s.p50Ms.toFixed(2)} / ${s.p99Ms.toFixed(2)} / ${s.maxMs.toFixed(1)} ms`,
      Number.isFinite(s.mainCpuUs) ? `${Math.round(s.mainCpuUs)} µs` : 'n/a',
    ]);
  }
  tableRows.push([
    `${row.cpuMs} ms, ${row.inFlight} in flight`,
    `limit: ${threads} bare threads`,
    `${Math.round(limit).toLocaleString('en-US')}/s`,
    '100 %',
    '',
    '',
  ]);
}
writeResult({
  name: 'serviceLoad',
  tables: [
    {
      title: `Service load: closed loop of callers, CPU-bound calls, ${threads} threads`,
      columns: [
        'calls',
        'contender',
        'throughput',
        'of the limit',
        'latency p50 / p99 / max',
        'main thread CPU per call',
      ],
      rows: tableRows,
      note: `Each caller awaits its call before the next; ${seconds} s per row and contender, medians of ${rounds} rounds, the order of contenders and bare threads rotating each round. The limit: ${threads} bare threads running the same calls back to back, no messaging. Main thread CPU per call: the callers' thread's own CPU time (user + system, Linux /proc, 10 ms ticks) over the row, per call — on ${threads} cores it is taken from the cores the pool threads run on.`,
    },
  ],
  values,
});
for (const r of tableRows) console.log(r.join(' | '));
