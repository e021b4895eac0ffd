/**
 * Main-thread heap held per pooled call in flight: with 10k echo calls submitted and none yet settled (the
 * measurement is taken synchronously, before the event loop can deliver a single result), heap after GC
 * minus heap after GC before submitting, over the count. Our bus (WorkerPool + CommandBus, metrics on)
 * beside raw `piscina.run`. Median of several rounds. A script, not a timed test.
 *
 *   node build.mjs --fast && node --expose-gc dist/bench/memoryInFlight.js [--calls 10000]
 */
import { fileURLToPath } from 'node:url';
import { CommandBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { Echo } from './handlers/echo.js';
import { median, writeResult } from './report.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const argCalls = process.argv.indexOf('--calls');
const calls = argCalls > 0 ? Number(process.argv[argCalls + 1]) : 10_000;
const rounds = 5;
const handlers = new URL('./handlers/', import.meta.url);

function heap(): number {
  (gc as () => void)();
  (gc as () => void)();
  return process.memoryUsage().heapUsed;
}

/** Bytes per call held while `calls` are in flight; the promises' array is allocated before the first reading. */
async function perCall(run: (input: { id: number; name: string }) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let round = 0; round < rounds + 1; round++) {
    const pending: Promise<unknown>[] = new Array(calls).fill(undefined);
    const before = heap();
    for (let i = 0; i < calls; i++) pending[i] = run({ id: i, name: 'echo' });
    const after = heap();
    await Promise.all(pending);
    // The first round sizes the pool's queue and caches; it is not counted.
    if (round > 0) samples.push((after - before) / calls);
  }
  return median(samples);
}

const pool = new WorkerPool({ maxQueue: 2 * calls });
const bus = new CommandBus({ pool });
bus.registerHandler(Echo, inWorker(new URL('echo.js', handlers), 'echo'));
await bus.ready();
const ours = await perCall((input) => bus.execute(Echo, input));
await bus.close();
await pool.close();

const piscina = new Piscina({ filename: fileURLToPath(new URL('echoPlain.js', handlers)) });
const raw = await perCall((input) => piscina.run(input));
await piscina.destroy();

console.log(
  `heap per in-flight call (${calls} in flight): cqrs-pool ${Math.round(ours)} B, raw piscina ${Math.round(raw)} B`,
);
writeResult({
  name: 'memoryInFlight',
  tables: [
    {
      title: `Main-thread heap per pooled call in flight (${calls.toLocaleString('en-US')} in flight)`,
      columns: ['pool', 'bytes per call'],
      rows: [
        ['cqrs-pool (WorkerPool + CommandBus, metrics on)', `${Math.round(ours)} B`],
        ['raw piscina.run', `${Math.round(raw)} B`],
      ],
      note: `Heap used after GC with the calls submitted and none settled, minus before; median of ${rounds} rounds.`,
    },
  ],
  values: { calls, oursBytesPerCall: ours, piscinaBytesPerCall: raw },
});
