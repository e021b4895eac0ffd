/**
 * Heap growth over many sequential calls, after GC: inline (1M calls, metrics on) and pooled (100k calls).
 * A script, not a timed test. Target: no growth (≤ 1 MB, GC noise).
 *
 *   node build.mjs --fast && node --expose-gc dist/bench/memoryGrowth.js [--calls N]
 */
import { CommandBus, defineCommand, inWorker, WorkerPool } from '@cqrs-pool/core';
import { z } from 'zod';
import { writeResult } from './report.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const argCalls = process.argv.indexOf('--calls');
const inlineCalls = argCalls > 0 ? Number(process.argv[argCalls + 1]) : 1_000_000;
const pooledCalls = Math.max(1, Math.floor(inlineCalls / 10));

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });

function heapMb(): number {
  (gc as () => void)();
  (gc as () => void)();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

interface Growth {
  label: string;
  calls: number;
  beforeMb: number;
  afterMb: number;
  peakMb: number;
}

async function measure(label: string, calls: number, run: () => Promise<unknown>): Promise<Growth> {
  for (let i = 0; i < 10_000; i++) await run(); // warm-up: JIT, caches, first allocations
  const before = heapMb();
  let peak = before;
  for (let i = 0; i < calls; i++) {
    await run();
    if (i % 100_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed / 2 ** 20);
  }
  const after = heapMb();
  console.log(
    `${label.padEnd(8)} ${calls} calls: heap ${before.toFixed(1)} → ${after.toFixed(1)} MB after GC ` +
      `(growth ${(after - before).toFixed(2)} MB, peak sampled ${peak.toFixed(1)} MB)`,
  );
  return { label, calls, beforeMb: before, afterMb: after, peakMb: peak };
}

const inline = new CommandBus();
inline.registerHandler(Add, (i) => i.a + i.b);
const inlineGrowth = await measure('inline', inlineCalls, () => inline.execute(Add, { a: 1, b: 2 }));

const pool = new WorkerPool({ threads: 2 });
const pooled = new CommandBus({ pool });
pooled.registerHandler(Add, inWorker(new URL('./handlers/add.js', import.meta.url), 'add'));
await pooled.ready();
const pooledGrowth = await measure('pooled', pooledCalls, () => pooled.execute(Add, { a: 1, b: 2 }));
await pooled.close();
await pool.close();

const mb = (n: number): string => `${n.toFixed(2)} MB`;
writeResult({
  name: 'memoryGrowth',
  tables: [
    {
      title: 'Heap growth over many sequential calls (after GC)',
      columns: ['calls', 'heap before', 'heap after', 'growth', 'peak sampled'],
      rows: [inlineGrowth, pooledGrowth].map((g) => [
        `${g.label}: ${g.calls.toLocaleString('en-US')}`,
        mb(g.beforeMb),
        mb(g.afterMb),
        mb(g.afterMb - g.beforeMb),
        mb(g.peakMb),
      ]),
      note: 'After 10,000 warm-up calls; `gc()` twice before each reading (`node --expose-gc`).',
    },
  ],
  values: {
    inlineGrowthMb: inlineGrowth.afterMb - inlineGrowth.beforeMb,
    pooledGrowthMb: pooledGrowth.afterMb - pooledGrowth.beforeMb,
  },
});
