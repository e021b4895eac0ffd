/**
 * The main thread's event-loop delay (`perf_hooks.monitorEventLoopDelay`, 1 ms resolution) while ~5 ms CPU
 * handlers run, side by side in one run: idle (nothing running; the floor), the handlers in the pool (our bus,
 * `threads` = `os.availableParallelism()`, 2 calls per thread kept in flight), and the same handler inline on
 * the main thread (one call after another, each started from `setImmediate` as requests would be). Medians
 * of several rounds, the loads interleaved.
 *
 *   node build.mjs --fast && node dist/bench/eventLoopDelay.bench.js [--seconds 3] [--rounds 5]
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CommandBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { Burn } from './handlers/burn.js';
import { burn } from './handlers/burnWork.js';
import { median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const seconds = arg('--seconds', 3);
const rounds = arg('--rounds', 5);
const threads = availableParallelism();

function calibrate(ms: number): number {
  const probe = 100_000;
  for (let i = 0; i < 5; i++) burn(probe);
  const perIteration = median(
    Array.from({ length: 9 }, () => {
      const t = performance.now();
      burn(probe);
      return (performance.now() - t) / probe;
    }),
  );
  return Math.round(ms / perIteration);
}
const iterations = calibrate(5);

interface Delay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  calls: number;
}

/** Runs `load` until told to stop, measuring the event-loop delay meanwhile. */
async function measure(load: (running: () => boolean) => Promise<number>): Promise<Delay> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let on = true;
  histogram.enable();
  const stop = new Promise<void>((resolve) =>
    setTimeout(() => {
      on = false;
      resolve();
    }, seconds * 1000),
  );
  const calls = await load(() => on);
  await stop;
  histogram.disable();
  return {
    p50Ms: histogram.percentile(50) / 1e6,
    p99Ms: histogram.percentile(99) / 1e6,
    maxMs: histogram.max / 1e6,
    calls,
  };
}

const pool = new WorkerPool({ threads });
const pooled = new CommandBus({ pool });
pooled.registerHandler(Burn, inWorker(new URL('./handlers/burn.js', import.meta.url), 'burn'));
await pooled.ready();
await Promise.all(Array.from({ length: 4 * threads }, () => pooled.execute(Burn, { iterations })));
const inline = new CommandBus();
inline.registerHandler(Burn, (input) => burn(input.iterations));

const poolLoad = async (running: () => boolean): Promise<number> => {
  let calls = 0;
  const lane = async (): Promise<void> => {
    while (running()) {
      await pooled.execute(Burn, { iterations });
      calls++;
    }
  };
  await Promise.all(Array.from({ length: 2 * threads }, lane));
  return calls;
};
const inlineLoad = (running: () => boolean): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    let calls = 0;
    const next = (): void => {
      if (!running()) {
        resolve(calls);
        return;
      }
      inline.execute(Burn, { iterations }).then(() => {
        calls++;
        setImmediate(next);
      }, reject);
    };
    setImmediate(next);
  });

// Loads interleaved round by round, so drift on a shared machine spreads over all three.
const samples = { idle: [] as Delay[], pool: [] as Delay[], inline: [] as Delay[] };
for (let round = 1; round <= rounds; round++) {
  samples.idle.push(await measure(async () => 0));
  samples.pool.push(await measure(poolLoad));
  samples.inline.push(await measure(inlineLoad));
  console.log(`round ${round}/${rounds} done`);
}
await pooled.close();
await pool.close();

const mid = (list: Delay[]): Delay => ({
  p50Ms: median(list.map((d) => d.p50Ms)),
  p99Ms: median(list.map((d) => d.p99Ms)),
  maxMs: median(list.map((d) => d.maxMs)),
  calls: median(list.map((d) => d.calls)),
});
const idle = mid(samples.idle);
const inPool = mid(samples.pool);
const onMain = mid(samples.inline);

const ms = (n: number): string => `${n.toFixed(2)} ms`;
const cases: [string, Delay][] = [
  ['idle (nothing running)', idle],
  [`5 ms handlers in the pool (${threads} threads, ${2 * threads} in flight)`, inPool],
  ['5 ms handlers inline on the main thread', onMain],
];
for (const [label, d] of cases) {
  console.log(
    `${label.padEnd(56)} p50 ${ms(d.p50Ms)}  p99 ${ms(d.p99Ms)}  max ${ms(d.maxMs)}  (${d.calls} calls)`,
  );
}

writeResult({
  name: 'eventLoopDelay',
  tables: [
    {
      title: 'Main-thread event-loop delay while ~5 ms CPU handlers run',
      columns: ['load', 'p50', 'p99', 'max', 'calls done'],
      rows: cases.map(([label, d]) => [label, ms(d.p50Ms), ms(d.p99Ms), ms(d.maxMs), String(d.calls)]),
      note: `\`monitorEventLoopDelay({ resolution: 1 })\` over ${seconds} s per load, medians of ${rounds} rounds; each sample is the interval a 1 ms timer actually took, so the floor is ~1 ms.`,
    },
  ],
  values: {
    threads,
    idleP99Ms: idle.p99Ms,
    poolP99Ms: inPool.p99Ms,
    inlineP99Ms: onMain.p99Ms,
  },
});
