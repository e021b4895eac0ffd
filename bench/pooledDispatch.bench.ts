/**
 * Round trips of a tiny echo task through a thread pool, side by side in one run: our bus (WorkerPool +
 * CommandBus, default options) against raw piscina (default options, and `stricterFIFO`), tinypool,
 * poolifier and workerpool, all with the same thread count (`os.availableParallelism()`).
 *
 * For each pool, at 1 call in flight (a sequential loop: per-call latency) and at 1000 in flight (a closed
 * loop: each settled call starts the next, so exactly 1000 are always outstanding): throughput and each
 * call's latency from `run` to settled, p50 and p99. Several rounds, pools interleaved within each round and
 * each started afresh, so drift on the machine spreads over all of them; the table holds medians of rounds.
 * Not mitata: mitata times one function at a time and cannot hold 1000 calls in flight.
 *
 *   node build.mjs --fast && node dist/bench/pooledDispatch.bench.js [--rounds 7] [--seconds 1]
 */
import { availableParallelism } from 'node:os';
import { type Contender, pooledContenders, type RunningPool } from './pools.js';
import { formatNs, median, quantile, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 7);
const seconds = arg('--seconds', 1);
const threads = availableParallelism();
const input = { id: 42, name: 'echo' };

interface Sample {
  perSec: number;
  p50Ns: number;
  p99Ns: number;
}

/** Keeps `inFlight` calls outstanding for `ms`, timing each; the sequential case is `inFlight` 1. */
async function drive(pool: RunningPool, inFlight: number, ms: number): Promise<Sample> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + ms;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await pool.run(input);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = performance.now() - started;
  return {
    perSec: (latencies.length / elapsed) * 1000,
    p50Ns: quantile(latencies, 0.5) * 1e6,
    p99Ns: quantile(latencies, 0.99) * 1e6,
  };
}

const contenders = pooledContenders();
const samples = new Map<Contender, { one: Sample[]; many: Sample[] }>(
  contenders.map((c) => [c, { one: [], many: [] }]),
);
for (let round = 1; round <= rounds; round++) {
  for (const contender of contenders) {
    console.log(`round ${round}: ${contender.name}`);
    const pool = await contender.start(threads);
    // Warm-up: threads started, JIT on both sides, the pool's own structures sized.
    await drive(pool, 1, 200);
    await drive(pool, 1000, 300);
    const entry = samples.get(contender)!;
    entry.one.push(await drive(pool, 1, seconds * 1000));
    entry.many.push(await drive(pool, 1000, seconds * 1000));
    await pool.close();
  }
  console.log(`round ${round}/${rounds} done`);
}

interface Summary {
  name: string;
  one: Sample;
  many: Sample;
}
const mid = (list: Sample[]): Sample => ({
  perSec: median(list.map((s) => s.perSec)),
  p50Ns: median(list.map((s) => s.p50Ns)),
  p99Ns: median(list.map((s) => s.p99Ns)),
});
const summaries: Summary[] = contenders.map((c) => {
  const entry = samples.get(c)!;
  return { name: c.name, one: mid(entry.one), many: mid(entry.many) };
});

const rate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
const ourRow = summaries[contenders.findIndex((c) => c.ours)];
const byName = (name: string) => summaries.find((s) => s.name === name);
const piscinaDefault = byName('piscina.run (defaults)');
const piscinaStrict = byName('piscina.run (stricterFIFO)');
const ref = piscinaDefault?.many.perSec ?? Number.NaN;

for (const s of summaries) {
  console.log(
    `${s.name.padEnd(46)} 1: ${rate(s.one.perSec).padStart(10)} p50 ${formatNs(s.one.p50Ns).padStart(9)}` +
      `   1000: ${rate(s.many.perSec).padStart(10)} p50 ${formatNs(s.many.p50Ns).padStart(9)} p99 ${formatNs(s.many.p99Ns).padStart(9)}`,
  );
}

writeResult({
  name: 'pooledDispatch',
  tables: [
    {
      title: `Pooled dispatch: echo task round trips, ${threads} threads`,
      columns: [
        'pool',
        '1 in flight: calls/s',
        'p50',
        'p99',
        '1000 in flight: calls/s',
        'p50',
        'p99',
        'vs piscina',
      ],
      rows: summaries.map((s) => [
        s.name,
        rate(s.one.perSec),
        formatNs(s.one.p50Ns),
        formatNs(s.one.p99Ns),
        rate(s.many.perSec),
        formatNs(s.many.p50Ns),
        formatNs(s.many.p99Ns),
        `×${(s.many.perSec / ref).toFixed(2)}`,
      ]),
      note:
        `Medians of ${rounds} rounds of ${seconds} s per mode; each pool started afresh per round, pools ` +
        'interleaved. Latency is per call, from `run`/`execute` to settled. "vs piscina": throughput at ' +
        '1000 in flight over raw `piscina.run` with default options.',
    },
  ],
  values: {
    threads,
    rounds,
    oursOnePerSec: ourRow?.one.perSec ?? Number.NaN,
    oursOneP50Ns: ourRow?.one.p50Ns ?? Number.NaN,
    oursManyPerSec: ourRow?.many.perSec ?? Number.NaN,
    oursManyP99Ns: ourRow?.many.p99Ns ?? Number.NaN,
    piscinaOneP50Ns: piscinaDefault?.one.p50Ns ?? Number.NaN,
    piscinaManyPerSec: ref,
    piscinaStrictManyP99Ns: piscinaStrict?.many.p99Ns ?? Number.NaN,
  },
  charts: [
    {
      title: `Pooled echo throughput at 1000 in flight (${threads} threads)`,
      unit: 'calls/s',
      bars: summaries.map((s, i) => ({
        label: s.name,
        value: s.many.perSec,
        ...(contenders[i]?.ours ? { ours: true } : {}),
      })),
    },
  ],
});
