/**
 * What per-key order costs, side by side in one run:
 * - inline, main thread: a tight loop of awaited `execute` calls (the way a service calls), unkeyed against
 *   keyed with a fresh key per call (no call ever waits), with a direct `await handler(input)` beside them —
 *   the added nanoseconds of the key over an unkeyed call;
 * - pooled: 1000 calls in flight (a closed loop) over 10,000 distinct keys, echo handler in the pool,
 *   against the same load without `orderingKey`;
 * - one hot key: 999 lanes over other keys with, beside them, 100 lanes all on one key (99 of them always
 *   waiting for it), against the 999 lanes alone — the other keys' throughput.
 * Several rounds, variants interleaved within each round; the table holds medians of rounds.
 *
 *   node build.mjs --fast && node dist/bench/keyOrder.bench.js [--rounds 5] [--seconds 1]
 */
import { availableParallelism } from 'node:os';
import { CommandBus, defineCommand, inWorker, WorkerPool } from '@cqrs-pool/core';
import { z } from 'zod';
import { Echo, EchoKeyed } from './handlers/echo.js';
import { formatNs, median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const seconds = arg('--seconds', 1);
const threads = availableParallelism();

// ---- inline: added cost of a key ----------------------------------------------------------------------
const Add = defineCommand('Add', {
  input: z.object({ a: z.number(), b: z.number(), key: z.number() }),
  output: z.number(),
});
const AddKeyed = defineCommand('AddKeyed', { input: Add.input, output: Add.output });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const inline = new CommandBus();
inline.registerHandler(Add, add);
inline.registerHandler(AddKeyed, add, { orderingKey: (input) => input.key });

const loopCalls = 200_000;
// One input object for every variant, its key changed before each call: the loops differ only in the bus.
const addInput = { a: 1, b: 2, key: 0 };
async function tightLoop(call: () => Promise<unknown> | unknown): Promise<number> {
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < loopCalls; i++) {
    addInput.key = i;
    sink += (await call()) as number;
  }
  const ns = ((performance.now() - started) * 1e6) / loopCalls;
  if (sink !== 3 * loopCalls) throw new Error('wrong sum');
  return ns;
}
const inlineVariants: Record<string, () => Promise<unknown> | unknown> = {
  direct: () => add(addInput),
  unkeyed: () => inline.execute(Add, addInput),
  keyed: () => inline.execute(AddKeyed, addInput),
};
const inlineNs: Record<string, number[]> = { direct: [], unkeyed: [], keyed: [] };
// Warm-up: JIT of every path.
for (const call of Object.values(inlineVariants)) await tightLoop(call);

// ---- pooled -------------------------------------------------------------------------------------------
const handlers = new URL('./handlers/', import.meta.url);

async function startPool(): Promise<{ bus: CommandBus; close: () => Promise<void> }> {
  const pool = new WorkerPool({ threads });
  const bus = new CommandBus({ pool });
  bus.registerHandler(Echo, inWorker(new URL('echo.js', handlers), 'echo'));
  bus.registerHandler(EchoKeyed, inWorker(new URL('echo.js', handlers), 'echoKeyed'), {
    orderingKey: (input) => input.id,
  });
  await bus.ready();
  return {
    bus,
    close: async () => {
      await bus.close();
      await pool.close();
    },
  };
}

/** `lanes` closed-loop lanes for `ms`; `next(lane, n)` makes a lane's n-th call. Calls per second per group. */
async function closedLoop(
  ms: number,
  groups: { lanes: number; call: (lane: number, n: number) => Promise<unknown> }[],
): Promise<number[]> {
  const done = groups.map(() => 0);
  const started = performance.now();
  const deadline = started + ms;
  const runs: Promise<void>[] = [];
  groups.forEach((group, g) => {
    for (let lane = 0; lane < group.lanes; lane++) {
      runs.push(
        (async () => {
          for (let n = 0; performance.now() < deadline; n++) {
            await group.call(lane, n);
            done[g] = (done[g] ?? 0) + 1;
          }
        })(),
      );
    }
  });
  await Promise.all(runs);
  const elapsed = performance.now() - started;
  return done.map((d) => (d * 1000) / elapsed);
}

const distinctKeys = 10_000;
const perSec: Record<string, number[]> = { unkeyed: [], keyed: [], othersAlone: [], othersWithHot: [] };
const hotPerSec: number[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const variant of Object.keys(inlineVariants)) {
    inlineNs[variant]?.push(await tightLoop(inlineVariants[variant] as () => unknown));
  }
  const { bus, close } = await startPool();
  // Warm-up: threads started, JIT on both sides.
  await closedLoop(300, [{ lanes: 1000, call: () => bus.execute(Echo, { id: 1, name: 'w' }) }]);
  const unkeyed = await closedLoop(seconds * 1000, [
    {
      lanes: 1000,
      call: (lane, n) => bus.execute(Echo, { id: (lane * 7919 + n) % distinctKeys, name: 'e' }),
    },
  ]);
  const keyed = await closedLoop(seconds * 1000, [
    {
      lanes: 1000,
      call: (lane, n) => bus.execute(EchoKeyed, { id: (lane * 7919 + n) % distinctKeys, name: 'e' }),
    },
  ]);
  // Other keys: each of 999 lanes keeps to keys of its own (lane + 1000 × n), so they never wait.
  const others = {
    lanes: 999,
    call: (lane: number, n: number) => bus.execute(EchoKeyed, { id: 1 + lane + 1000 * (n % 10), name: 'o' }),
  };
  const [alone] = await closedLoop(seconds * 1000, [others]);
  const [withHot, hot] = await closedLoop(seconds * 1000, [
    others,
    { lanes: 100, call: () => bus.execute(EchoKeyed, { id: 0, name: 'hot' }) },
  ]);
  await close();
  perSec.unkeyed?.push(unkeyed[0] ?? Number.NaN);
  perSec.keyed?.push(keyed[0] ?? Number.NaN);
  perSec.othersAlone?.push(alone ?? Number.NaN);
  perSec.othersWithHot?.push(withHot ?? Number.NaN);
  hotPerSec.push(hot ?? Number.NaN);
  console.log(
    `round ${round}/${rounds}: inline ${inlineNs.direct?.at(-1)?.toFixed(0)} / ${inlineNs.unkeyed?.at(-1)?.toFixed(0)} / ${inlineNs.keyed?.at(-1)?.toFixed(0)} ns; pooled ${Math.round(unkeyed[0] ?? 0)} vs ${Math.round(keyed[0] ?? 0)} /s keyed; others ${Math.round(alone ?? 0)} alone, ${Math.round(withHot ?? 0)} beside the hot key (${Math.round(hot ?? 0)}/s)`,
  );
}

const m = (list: number[] | undefined) => median(list ?? []);
const directNs = m(inlineNs.direct);
const unkeyedNs = m(inlineNs.unkeyed);
const keyedNs = m(inlineNs.keyed);
const unkeyedPerSec = m(perSec.unkeyed);
const keyedPerSec = m(perSec.keyed);
const alonePerSec = m(perSec.othersAlone);
const withHotPerSec = m(perSec.othersWithHot);
const rate = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;
writeResult({
  name: 'keyOrder',
  tables: [
    {
      title: 'Per-key order, inline: an awaited call in a tight loop (main thread)',
      columns: ['what', 'per call', 'over direct'],
      rows: [
        ['direct: await handler(input)', formatNs(directNs), '—'],
        ['execute, no orderingKey', formatNs(unkeyedNs), `+${formatNs(unkeyedNs - directNs)}`],
        [
          'execute, orderingKey (a fresh key per call)',
          formatNs(keyedNs),
          `+${formatNs(keyedNs - directNs)}`,
        ],
      ],
      note: `${loopCalls.toLocaleString('en-US')} calls a round, medians of ${rounds} rounds; the key adds ${formatNs(keyedNs - unkeyedNs)} over an unkeyed call.`,
    },
    {
      title: `Per-key order, pooled: 1000 in flight, echo handler, ${threads} threads`,
      columns: ['load', 'throughput', 'ratio'],
      rows: [
        ['no orderingKey', rate(unkeyedPerSec), '×1.00'],
        [
          `orderingKey, ${distinctKeys.toLocaleString('en-US')} distinct keys`,
          rate(keyedPerSec),
          `×${(keyedPerSec / unkeyedPerSec).toFixed(2)}`,
        ],
        ['999 lanes of other keys, alone', rate(alonePerSec), '×1.00'],
        [
          'the same, beside 100 lanes on one hot key',
          rate(withHotPerSec),
          `×${(withHotPerSec / alonePerSec).toFixed(2)}`,
        ],
      ],
      note: `Closed loops of ${seconds} s, medians of ${rounds} rounds. The hot key itself served ${rate(median(hotPerSec))} (one call at a time).`,
    },
  ],
  values: {
    directNs,
    unkeyedNs,
    keyedNs,
    keyAddedNs: keyedNs - unkeyedNs,
    unkeyedPerSec,
    keyedPerSec,
    keyedOverUnkeyed: keyedPerSec / unkeyedPerSec,
    othersAlonePerSec: alonePerSec,
    othersWithHotPerSec: withHotPerSec,
    othersWithHotOverAlone: withHotPerSec / alonePerSec,
  },
});
console.log(
  `key adds ${formatNs(keyedNs - unkeyedNs)} inline; pooled keyed ×${(keyedPerSec / unkeyedPerSec).toFixed(2)}; others beside a hot key ×${(withHotPerSec / alonePerSec).toFixed(2)}`,
);
