/**
 * What a `timeout()` costs pooled calls under load: 1000 callers in a closed loop of echo calls on the
 * machine's threads, side by side in one run — our bus without middleware, the same bus with `timeout()`
 * (as the production config sets on every bus), and raw `piscina.run` for scale. A call that can be
 * cancelled may have its thread terminated after its grace period: it travels in batches and on the board
 * like the others, but its thread first sends the outcomes it holds, an outcome message per call or two.
 * Rounds interleave the contenders, their order rotating each round; medians of rounds.
 *
 *   node build.mjs --fast && node dist/bench/pooledTimeout.bench.js [--rounds 3] [--seconds 2]
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CommandBus, inWorker, timeout, WorkerPool } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { Echo } from './handlers/echo.js';
import { median, rotated, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 3);
const seconds = arg('--seconds', 2);
const threads = availableParallelism();
const inFlight = 1000;
const handlers = new URL('./handlers/', import.meta.url);
const input = { id: 1, name: 'e' };

interface Running {
  call(): Promise<unknown>;
  /** Calls per message to the threads so far (undefined where the pool does not batch). */
  callsPerMessage(): number | undefined;
  close(): Promise<void>;
}

async function ours(withTimeout: boolean): Promise<Running> {
  const pool = new WorkerPool({ threads, maxQueue: 4 * inFlight });
  const bus = new CommandBus({ pool, middleware: withTimeout ? [timeout(30_000)] : [] });
  bus.registerHandler(Echo, inWorker(new URL('echo.js', handlers), 'echo'));
  await bus.ready();
  return {
    call: () => bus.execute(Echo, input),
    callsPerMessage: () => {
      const { messages, calls } = pool.batchStats;
      return messages === 0 ? 1 : calls / messages;
    },
    async close() {
      await bus.close();
      await pool.close();
    },
  };
}

async function piscina(): Promise<Running> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('echoPlain.js', handlers)),
    minThreads: threads,
    maxThreads: threads,
  });
  return { call: () => pool.run(input), callsPerMessage: () => undefined, close: () => pool.destroy() };
}

/** `inFlight` callers, each awaiting its call before the next, for `ms`: calls per second. */
async function closedLoop(running: Running, ms: number): Promise<number> {
  let done = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        await running.call();
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - started);
}

const contenders = [
  { key: 'plain', name: 'cqrs-pool, no middleware', start: () => ours(false) },
  { key: 'timeout', name: 'cqrs-pool, timeout(30 s)', start: () => ours(true) },
  { key: 'piscina', name: 'raw piscina.run (defaults)', start: () => piscina() },
];
const perSec = new Map<string, number[]>();
const perMessage = new Map<string, number[]>();
for (let round = 1; round <= rounds; round++) {
  for (const contender of rotated(contenders, round)) {
    const running = await contender.start();
    await closedLoop(running, 300); // warm-up: threads started, JIT on both sides
    perSec.set(contender.key, [
      ...(perSec.get(contender.key) ?? []),
      await closedLoop(running, seconds * 1000),
    ]);
    const mean = running.callsPerMessage();
    if (mean !== undefined) perMessage.set(contender.key, [...(perMessage.get(contender.key) ?? []), mean]);
    await running.close();
  }
  console.log(`round ${round}/${rounds} done`);
}

const values: Record<string, number> = { threads };
const rows: string[][] = [];
const plain = median(perSec.get('plain') ?? []);
for (const contender of contenders) {
  const rate = median(perSec.get(contender.key) ?? []);
  const batch = perMessage.get(contender.key);
  values[`${contender.key}PerSec`] = rate;
  rows.push([
    contender.name,
    `${Math.round(rate).toLocaleString('en-US')}/s`,
    `${((rate / plain) * 100).toFixed(1)} %`,
    batch === undefined ? '' : median(batch).toFixed(1),
  ]);
}
writeResult({
  name: 'pooledTimeout',
  tables: [
    {
      title: `Pooled calls under timeout(): ${inFlight} callers in a closed loop, echo handler, ${threads} threads`,
      columns: ['contender', 'throughput', 'of no middleware', 'calls per message to a thread'],
      rows,
      note: `Each caller awaits its call before the next; ${seconds} s per contender, medians of ${rounds} interleaved rounds, the order rotating each round.`,
    },
  ],
  values,
});
for (const r of rows) console.log(r.join(' | '));
