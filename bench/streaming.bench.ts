/**
 * Streaming queries: one million small rows (`{ id, name }`) from a worker generator to a `for await`
 * consumer on the main thread, beside the same rows returned as one array by a plain query — measured side
 * by side, several rounds each, interleaved, medians of rounds. Also:
 *
 * - main-thread heap during a stream: `heapUsed` sampled every 16,384 items, highest sample minus the reading
 *   taken after a GC at the start (garbage not yet collected included), and the live heap — after a GC — at
 *   ten points of the stream (both minus the start); for the array, the heap once it arrived.
 * - time to the first item of a 1M-item stream: from `stream()` to the first item in hand, the stream then
 *   stopped (`return()`), thread warm; median of many.
 * - the same million rows from an inline generator (no thread, no clone), for scale.
 *
 *   node build.mjs --fast && node dist/bench/streaming.bench.js [--rounds 5] [--items 1000000]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { defineStreamQuery, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { ArrayRows, type Row, StreamRows } from './handlers/rows.js';
import { median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const items = arg('--items', 1_000_000);
const firstItemRuns = arg('--first', 50);
// A GC on demand, without a command-line flag (the runner starts every .bench file alike).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = 1024 * 1024;

const url = new URL('./handlers/rows.js', import.meta.url);
const pool = new WorkerPool({ threads: 2 });
const queries = new QueryBus({ pool });
queries.registerHandler(StreamRows, inWorker(url, 'streamRows'));
queries.registerHandler(ArrayRows, inWorker(url, 'arrayRows'));
const InlineRows = defineStreamQuery('InlineRows', { input: StreamRows.input, item: StreamRows.item });
queries.registerHandler(InlineRows, async function* ({ n }) {
  for (let i = 0; i < n; i++) yield { id: i, name: 'row' };
});
await queries.ready();

interface StreamRun {
  perSec: number;
  /** Highest `heapUsed` sampled, minus the start (bytes). */
  peakHeap: number;
  /** Highest live heap (after a GC) at ten points, minus the start (bytes). */
  liveHeap: number;
}

async function streamRun(def: typeof StreamRows | typeof InlineRows, probeLive: boolean): Promise<StreamRun> {
  gc();
  const start = process.memoryUsage().heapUsed;
  let peak = 0;
  let live = 0;
  let seen = 0;
  let sum = 0;
  const liveEvery = Math.floor(items / 10);
  const began = performance.now();
  let paused = 0;
  for await (const row of queries.stream(def, { n: items })) {
    sum += (row as Row).id;
    seen++;
    if ((seen & 16_383) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - start);
    if (probeLive && seen % liveEvery === 0) {
      const at = performance.now();
      gc();
      live = Math.max(live, process.memoryUsage().heapUsed - start);
      paused += performance.now() - at;
    }
  }
  const ms = performance.now() - began - paused;
  if (seen !== items || sum !== (items * (items - 1)) / 2) throw new Error(`lost items: ${seen}`);
  return { perSec: (items / ms) * 1000, peakHeap: peak, liveHeap: live };
}

async function arrayRun(): Promise<{ perSec: number; heap: number }> {
  gc();
  const start = process.memoryUsage().heapUsed;
  const began = performance.now();
  const rows = await queries.execute(ArrayRows, { n: items });
  const ms = performance.now() - began;
  const heap = process.memoryUsage().heapUsed - start;
  let sum = 0;
  for (const row of rows) sum += row.id;
  if (rows.length !== items || sum !== (items * (items - 1)) / 2) throw new Error('lost rows');
  return { perSec: (items / ms) * 1000, heap };
}

async function firstItemMs(): Promise<number> {
  const began = performance.now();
  const stream = queries.stream(StreamRows, { n: items });
  await stream.next();
  const ms = performance.now() - began;
  await stream.return();
  return ms;
}

// Warm-up: the generator, the clone paths and the consumer compiled on both sides.
await streamRun(StreamRows, false);
await arrayRun();
const streamed: StreamRun[] = [];
const heapProbed: StreamRun[] = [];
const arrays: { perSec: number; heap: number }[] = [];
const inline: StreamRun[] = [];
for (let round = 1; round <= rounds; round++) {
  streamed.push(await streamRun(StreamRows, false));
  arrays.push(await arrayRun());
  heapProbed.push(await streamRun(StreamRows, true));
  inline.push(await streamRun(InlineRows, false));
  console.log(`round ${round}/${rounds} done`);
}
const firsts: number[] = [];
for (let i = 0; i < firstItemRuns; i++) firsts.push(await firstItemMs());
await queries.close();
await pool.close();

const streamPerSec = median(streamed.map((r) => r.perSec));
const arrayPerSec = median(arrays.map((r) => r.perSec));
const inlinePerSec = median(inline.map((r) => r.perSec));
const peakHeapMb = Math.max(...streamed.map((r) => r.peakHeap)) / MB;
const liveHeapMb = Math.max(...heapProbed.map((r) => r.liveHeap)) / MB;
const arrayHeapMb = median(arrays.map((r) => r.heap)) / MB;
const firstItemMedianMs = median(firsts);
const rate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
const count = items.toLocaleString('en-US');
console.log(
  `${count} rows: stream ${rate(streamPerSec)} (heap peak +${peakHeapMb.toFixed(1)} MB, live +${liveHeapMb.toFixed(1)} MB), ` +
    `one array ${rate(arrayPerSec)} (+${arrayHeapMb.toFixed(1)} MB), inline stream ${rate(inlinePerSec)}; ` +
    `first item ${firstItemMedianMs.toFixed(3)} ms`,
);
writeResult({
  name: 'streaming',
  tables: [
    {
      title: `${count} small rows from a worker to the main thread`,
      columns: ['how', 'rows/s', 'main-thread heap above the start'],
      rows: [
        [
          '`queries.stream()`, `for await` (worker generator)',
          rate(streamPerSec),
          `peak ${peakHeapMb.toFixed(1)} MB (live ${liveHeapMb.toFixed(1)} MB)`,
        ],
        [
          '`queries.execute()` of the same rows as one array',
          rate(arrayPerSec),
          `${arrayHeapMb.toFixed(1)} MB`,
        ],
        ['`queries.stream()` of an inline generator (no thread)', rate(inlinePerSec), '—'],
      ],
      note:
        `Rows \`{ id, name }\`, default highWaterMark (1024), 2 threads; medians of ${rounds} rounds, interleaved. ` +
        'Stream heap: peak = highest heapUsed sampled every 16,384 rows (uncollected garbage included); live = ' +
        'highest heapUsed after a GC at ten points of the stream (GC pauses not timed). Array heap: heapUsed once the array arrived.',
    },
    {
      title: `Time to the first item of a ${count}-item stream`,
      columns: ['median', 'p90'],
      rows: [
        [
          `${firstItemMedianMs.toFixed(3)} ms`,
          `${[...firsts].sort((a, b) => a - b)[Math.floor(firsts.length * 0.9)]?.toFixed(3)} ms`,
        ],
      ],
      note: `From \`stream()\` to the first row in hand, thread warm, the stream then stopped; ${firstItemRuns} runs.`,
    },
  ],
  values: {
    items,
    streamPerSec,
    arrayPerSec,
    streamOverArray: streamPerSec / arrayPerSec,
    inlinePerSec,
    streamPeakHeapMb: peakHeapMb,
    streamLiveHeapMb: liveHeapMb,
    arrayHeapMb,
    firstItemMs: firstItemMedianMs,
  },
  charts: [
    {
      title: `${count} rows, worker to main thread (rows/s)`,
      unit: 'rows/s',
      bars: [
        { label: 'stream', value: streamPerSec, ours: true },
        { label: 'one array', value: arrayPerSec, reference: true },
      ],
    },
  ],
});
