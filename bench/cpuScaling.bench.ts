/**
 * CPU-heavy scaling: a fixed batch of ~1 ms CPU tasks, side by side in one run, done
 *   - sequentially on the main thread (the 1× reference),
 *   - by k bare `worker_threads` burning their share with no messaging at all (the machine's real limit),
 *   - through our bus on a WorkerPool of k threads (all tasks submitted at once),
 *   - through raw `piscina.run` with k threads,
 * for k = 1 … N (`os.availableParallelism()`). Speedup is sequential time over the contender's; efficiency is
 * our speedup over the bare threads' at the same k. Medians of several rounds, contenders interleaved.
 *
 *   node build.mjs --fast && node dist/bench/cpuScaling.bench.js [--rounds 7] [--tasks 800]
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CommandBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { Burn } from './handlers/burn.js';
import { burn } from './handlers/burnWork.js';
import { median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 7);
const tasks = arg('--tasks', 800);
const maxThreads = availableParallelism();
const handlers = new URL('./handlers/', import.meta.url);

/** Iterations of `burn` that take about `ms` on this machine's main thread (median of several tries). */
function calibrate(ms: number): number {
  let iterations = 100_000;
  for (let i = 0; i < 5; i++) burn(iterations); // JIT
  const perIteration = median(
    Array.from({ length: 9 }, () => {
      const t = performance.now();
      burn(iterations);
      return (performance.now() - t) / iterations;
    }),
  );
  iterations = Math.round(ms / perIteration);
  return iterations;
}
const iterations = calibrate(1);

function sequential(): number {
  const t = performance.now();
  let sink = 0;
  for (let i = 0; i < tasks; i++) sink ^= burn(iterations);
  if (sink === 0.5) console.log(sink); // keeps the result observable
  return performance.now() - t;
}

/** k threads started and ready first; timed from the one 'go' each to the last 'done'. */
async function bare(k: number): Promise<number> {
  const shares = Array.from({ length: k }, (_, i) => Math.floor(tasks / k) + (i < tasks % k ? 1 : 0));
  const workers = shares.map(
    (count) =>
      new Worker(fileURLToPath(new URL('burnBare.js', handlers)), { workerData: { iterations, count } }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const t = performance.now();
  await Promise.all(
    workers.map((w) => {
      const done = new Promise((resolve) => w.once('message', resolve));
      w.postMessage('go');
      return done;
    }),
  );
  const elapsed = performance.now() - t;
  await Promise.all(workers.map((w) => w.terminate()));
  return elapsed;
}

async function timeAll(run: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await Promise.all(Array.from({ length: tasks }, run));
  return performance.now() - t;
}

async function ours(k: number): Promise<number> {
  const pool = new WorkerPool({ threads: k });
  const bus = new CommandBus({ pool });
  bus.registerHandler(Burn, inWorker(new URL('burn.js', handlers), 'burn'));
  await bus.ready();
  // Warm-up: every thread's JIT on the handler.
  await Promise.all(Array.from({ length: 4 * k }, () => bus.execute(Burn, { iterations })));
  const elapsed = await timeAll(() => bus.execute(Burn, { iterations }));
  await bus.close();
  await pool.close();
  return elapsed;
}

async function piscina(k: number): Promise<number> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('burnPlain.js', handlers)),
    minThreads: k,
    maxThreads: k,
  });
  await Promise.all(Array.from({ length: 4 * k }, () => pool.run({ iterations })));
  const elapsed = await timeAll(() => pool.run({ iterations }));
  await pool.destroy();
  return elapsed;
}

const ks = Array.from({ length: maxThreads }, (_, i) => i + 1);
const times = { sequential: [] as number[], bare: ks.map(() => [] as number[]) };
const oursTimes = ks.map(() => [] as number[]);
const piscinaTimes = ks.map(() => [] as number[]);
sequential(); // JIT
for (let round = 1; round <= rounds; round++) {
  times.sequential.push(sequential());
  for (const [i, k] of ks.entries()) {
    times.bare[i]?.push(await bare(k));
    oursTimes[i]?.push(await ours(k));
    piscinaTimes[i]?.push(await piscina(k));
  }
  console.log(`round ${round}/${rounds} done`);
}

const seq = median(times.sequential);
// Speedups paired within each round (that round's sequential time over the contender's), then the median
// over rounds: on a shared machine the load drifts between rounds more than within one.
const pairedSpeedup = (list: number[] | undefined): number =>
  median(times.sequential.map((t, r) => t / (list?.[r] ?? Number.NaN)));
const pairedEfficiency = (ours: number[] | undefined, limit: number[] | undefined): number =>
  median((limit ?? []).map((t, r) => t / (ours?.[r] ?? Number.NaN)));
const rows = ks.map((k, i) => ({
  k,
  bareSpeedup: pairedSpeedup(times.bare[i]),
  oursSpeedup: pairedSpeedup(oursTimes[i]),
  piscinaSpeedup: pairedSpeedup(piscinaTimes[i]),
  efficiency: pairedEfficiency(oursTimes[i], times.bare[i]),
}));
// The limit is only a limit if the machine gave us its cores: one bare thread must match the main thread,
// and N must come near N×. Otherwise (other processes busy on the cores) the efficiency is not reported.
const limitOk =
  Math.abs((rows[0]?.bareSpeedup ?? 0) - 1) <= 0.1 &&
  (rows[rows.length - 1]?.bareSpeedup ?? 0) >= 0.8 * maxThreads;
for (const r of rows) {
  console.log(
    `${r.k} threads: bare ×${r.bareSpeedup.toFixed(2)}  ours ×${r.oursSpeedup.toFixed(2)}  piscina ×${r.piscinaSpeedup.toFixed(2)}  efficiency ${r.efficiency.toFixed(3)}`,
  );
}
const top = rows[rows.length - 1];
const taskMs = seq / tasks;

writeResult({
  name: 'cpuScaling',
  tables: [
    {
      title: `CPU-heavy scaling: ${tasks} tasks of ~${taskMs.toFixed(2)} ms CPU each`,
      columns: [
        'threads',
        'bare threads (limit)',
        'cqrs-pool',
        'raw piscina',
        'cqrs-pool efficiency (vs bare)',
      ],
      rows: [
        ['main thread, sequential', `×1.00 (${seq.toFixed(0)} ms)`, '', '', ''],
        ...rows.map((r) => [
          String(r.k),
          `×${r.bareSpeedup.toFixed(2)}`,
          `×${r.oursSpeedup.toFixed(2)}`,
          `×${r.piscinaSpeedup.toFixed(2)}`,
          `${(r.efficiency * 100).toFixed(1)} %`,
        ]),
      ],
      note:
        `Speedup over the same ${tasks} tasks run sequentially on the main thread, paired within each round; ` +
        `medians of ${rounds} rounds. ` +
        (limitOk
          ? ''
          : '**The machine was busy: the bare threads did not reach the cores’ limit, so the efficiency is ' +
            'not a measure of the pool.** ') +
        'Bare threads: k `worker_threads` each burning its share with no messaging. Pools: every task ' +
        'submitted at once, timed to the last result, after a warm-up.',
    },
  ],
  values: {
    threads: maxThreads,
    taskMs,
    bareSpeedup: top?.bareSpeedup ?? Number.NaN,
    oursSpeedup: top?.oursSpeedup ?? Number.NaN,
    piscinaSpeedup: top?.piscinaSpeedup ?? Number.NaN,
    efficiency: top?.efficiency ?? Number.NaN,
    limitOk: limitOk ? 1 : 0,
  },
  charts: [
    {
      title: `CPU-heavy speedup at ${maxThreads} threads (×, over sequential)`,
      unit: '×',
      bars: [
        { label: 'bare threads (limit)', value: top?.bareSpeedup ?? Number.NaN, reference: true },
        { label: 'cqrs-pool', value: top?.oursSpeedup ?? Number.NaN, ours: true },
        { label: 'raw piscina', value: top?.piscinaSpeedup ?? Number.NaN },
      ],
    },
  ],
});
