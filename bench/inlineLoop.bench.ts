/**
 * What the bus adds to an inline call made the way a service makes it: a tight loop of awaited calls
 * (`for (…) await bus.execute(…)`) against the same loop of direct awaited calls of the handler, for a sync
 * and an async handler, with metrics on and off. A harness's own per-iteration cost (mitata's loop and timer
 * reads, see inlineDispatch.bench.ts) lands on the baseline too and shrinks every ratio; here the added
 * nanoseconds are what a caller pays. In a process of its own: the buses mitata warms would colour these
 * figures (and these the other's). Rounds, variants interleaved, medians.
 *
 *   node build.mjs --fast && node dist/bench/inlineLoop.bench.js [--rounds 7] [--calls 1000000]
 */
import { CommandBus, defineCommand } from '@cqrs-pool/core';
import { z } from 'zod';
import { formatNs, median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 7);
const loopCalls = arg('--calls', 1_000_000);

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const addAsync = async (input: { a: number; b: number }): Promise<number> => input.a + input.b;
const input = { a: 1, b: 2 };

function bus(metrics: boolean, handler: typeof add | typeof addAsync): CommandBus {
  const commands = new CommandBus({ metrics });
  commands.registerHandler(Add, handler);
  return commands;
}
const measured = bus(true, add);
const bare = bus(false, add);
const measuredAsync = bus(true, addAsync);
const bareAsync = bus(false, addAsync);

/** ns per awaited call over a tight loop of `loopCalls`. */
async function tightLoop(call: () => unknown): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < loopCalls; i++) await call();
  return ((performance.now() - started) * 1e6) / loopCalls;
}

interface LoopVariant {
  name: string;
  call: () => unknown;
  /** Index of the direct call this one is compared with; undefined for a direct call. */
  base: number | undefined;
  samples: number[];
}
const variants: LoopVariant[] = [
  { name: 'direct: await handler(input)', call: () => add(input), base: undefined, samples: [] },
  { name: 'bus.execute, metrics on', call: () => measured.execute(Add, input), base: 0, samples: [] },
  { name: 'bus.execute, metrics off', call: () => bare.execute(Add, input), base: 0, samples: [] },
  { name: 'direct: await asyncHandler(input)', call: () => addAsync(input), base: undefined, samples: [] },
  {
    name: 'bus.execute of an async handler, metrics on',
    call: () => measuredAsync.execute(Add, input),
    base: 3,
    samples: [],
  },
  {
    name: 'bus.execute of an async handler, metrics off',
    call: () => bareAsync.execute(Add, input),
    base: 3,
    samples: [],
  },
];
for (const variant of variants) await tightLoop(variant.call); // warm-up: JIT of every path
for (let round = 0; round < rounds; round++) {
  for (const variant of variants) variant.samples.push(await tightLoop(variant.call));
}
const ns = variants.map((v) => median(v.samples));
const added = (i: number): number => {
  const base = variants[i]?.base;
  return base === undefined ? 0 : (ns[i] as number) - (ns[base] as number);
};
for (const [i, v] of variants.entries()) {
  console.log(`${v.name.padEnd(46)} ${formatNs(ns[i] as number).padStart(9)}  +${formatNs(added(i))}`);
}

writeResult({
  name: 'inlineLoop',
  tables: [
    {
      title: 'Inline command dispatch, tight loop',
      columns: ['what', 'per call', 'added over the direct call', 'ratio'],
      rows: variants.map((v, i) => {
        const base = ns[v.base ?? i] as number;
        const over = added(i);
        return [
          v.name,
          formatNs(ns[i] as number),
          v.base === undefined ? '—' : `${over < 0 ? '−' : '+'}${formatNs(Math.abs(over))}`,
          `×${((ns[i] as number) / base).toFixed(2)}`,
        ];
      }),
      note:
        `\`for (…) await call()\`, ${loopCalls.toLocaleString('en-US')} calls a round; medians of ${rounds} ` +
        'rounds, variants interleaved. Each bus row is compared with the direct call of the same handler.',
    },
  ],
  values: {
    directNs: ns[0] as number,
    addedOnNs: added(1),
    addedOffNs: added(2),
    addedAsyncOnNs: added(4),
    addedAsyncOffNs: added(5),
  },
});
const figures = measured.getMetrics().handlers.Add;
console.log(`\ncounted ${figures?.executions} executions on the metrics-on bus`);
