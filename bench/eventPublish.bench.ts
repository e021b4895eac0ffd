/**
 * What a publish costs, side by side in one run.
 *
 * Inline: one event to 5 inline no-op subscribers, each variant a tight loop of awaited publishes (the way a
 * service publishes; a harness's own per-iteration cost would hide the difference) — five direct awaited
 * calls (the least any bus can do), our `EventBus.publish` (payload validated once, every subscriber counted
 * in shared memory, the report awaited) with metrics on and off and in `'sequential'` order, the same with
 * five `async` no-op subscribers against five direct awaited `async` calls, and
 * `@nestjs/cqrs`'s `EventBus.publish` with five `@EventsHandler`s registered through Nest's DI. Nest's
 * `publish` calls its handlers synchronously and returns nothing to await, so its row is the publish call
 * alone, awaited like the others. Rounds, variants interleaved within each, medians of rounds.
 *
 * Pooled (rounds, like pooledDispatch): one event to 4 worker subscribers with 1000 publishes in flight (a
 * closed loop: each settled publish starts the next), against the same fan-out done by hand with raw
 * `piscina.run` — four runs of a no-op task per publish, awaited together, 1000 such publishes in flight.
 * Deliveries/s: subscriber calls completed per second. Several rounds, the two interleaved and each pool
 * started afresh per round; medians of rounds.
 *
 *   node build.mjs --fast && node dist/bench/eventPublish.bench.js [--rounds 5] [--seconds 1]
 */
import 'reflect-metadata';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EventBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventsHandler, type IEventHandler, EventBus as NestEventBus } from '@nestjs/cqrs';
import { Piscina } from 'piscina';
import { Placed } from './handlers/event.js';
import { formatNs, median, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const seconds = arg('--seconds', 1);
const threads = availableParallelism();
const payload = { orderId: 1, total: 10 };
const SUBSCRIBERS = 5;
const WORKER_SUBSCRIBERS = 4;
const IN_FLIGHT = 1000;

// ---- Pooled: 4 worker subscribers, 1000 publishes in flight ----

interface Fanout {
  /** One publish: resolves when all its deliveries are done. */
  publish(): Promise<unknown>;
  close(): Promise<void>;
}

const handlers = new URL('./handlers/', import.meta.url);

async function ours(): Promise<Fanout> {
  const pool = new WorkerPool({ threads });
  const events = new EventBus({ pool });
  for (let s = 0; s < WORKER_SUBSCRIBERS; s++) {
    events.subscribe(Placed, `s${s}`, inWorker(new URL('event.js', handlers), 'noop'));
  }
  await events.ready();
  return {
    publish: () => events.publish(Placed, payload),
    async close() {
      await events.close();
      await pool.close();
    },
  };
}

async function rawPiscina(): Promise<Fanout> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('noopPlain.js', handlers)),
    minThreads: threads,
    maxThreads: threads,
  });
  return {
    publish: () => Promise.all(Array.from({ length: WORKER_SUBSCRIBERS }, () => pool.run(payload))),
    close: () => pool.destroy(),
  };
}

/** Keeps `IN_FLIGHT` publishes outstanding for `ms`; deliveries per second. */
async function drive(fanout: Fanout, ms: number): Promise<number> {
  let publishes = 0;
  const started = performance.now();
  const deadline = started + ms;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await fanout.publish();
      publishes++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return ((publishes * WORKER_SUBSCRIBERS) / (performance.now() - started)) * 1000;
}

// ---- Inline: 5 no-op subscribers ----
// Measured first, in a process that has run nothing else yet, as every inline scenario is: 1000 publishes in
// flight through the pool leave the heap and the shared code's type feedback in a state that makes these
// allocation-bound microsecond loops 1.5–2× slower, the direct baseline not at all.

const noop = (_event: unknown): void => {};
const noopAsync = async (_event: unknown): Promise<void> => {};
const measured = new EventBus({ metrics: true });
const bare = new EventBus({ metrics: false });
const measuredAsync = new EventBus({ metrics: true });
for (let s = 0; s < SUBSCRIBERS; s++) {
  measured.subscribe(Placed, `s${s}`, noop);
  bare.subscribe(Placed, `s${s}`, noop);
  measuredAsync.subscribe(Placed, `s${s}`, noopAsync);
}
const direct = Array.from({ length: SUBSCRIBERS }, () => noop);
const directAsync = Array.from({ length: SUBSCRIBERS }, () => noopAsync);

// Nest's CQRS: an event is a class instance, routed by its constructor to injectable handlers. Decorators
// applied as the functions they are, so this file needs no decorator compilation.
class PlacedEvent {
  constructor(
    readonly orderId: number,
    readonly total: number,
  ) {}
}
const nestHandlers = Array.from({ length: SUBSCRIBERS }, () => {
  class Handler implements IEventHandler<PlacedEvent> {
    handle(event: PlacedEvent): void {
      noop(event);
    }
  }
  EventsHandler(PlacedEvent)(Handler);
  Injectable()(Handler);
  return Handler;
});
class AppModule {}
Module({ imports: [CqrsModule.forRoot()], providers: nestHandlers })(AppModule);
const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
await app.init();
const nestEvents = app.get(NestEventBus);

const loopPublishes = 200_000;
/** ns per awaited publish over a tight loop of `loopPublishes`. */
async function tightLoop(publish: () => unknown): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < loopPublishes; i++) await publish();
  return ((performance.now() - started) * 1e6) / loopPublishes;
}
const inlineVariants: { name: string; publish: () => unknown; samples: number[] }[] = [
  {
    name: 'direct: 5 handler calls, awaited',
    publish: async () => {
      for (const handler of direct) await handler(payload);
    },
    samples: [],
  },
  { name: 'EventBus.publish, metrics on', publish: () => measured.publish(Placed, payload), samples: [] },
  { name: 'EventBus.publish, metrics off', publish: () => bare.publish(Placed, payload), samples: [] },
  {
    name: "EventBus.publish, 'sequential'",
    publish: () => measured.publish(Placed, payload, { strategy: 'sequential' }),
    samples: [],
  },
  {
    name: 'direct: 5 async handler calls, awaited',
    publish: async () => {
      for (const handler of directAsync) await handler(payload);
    },
    samples: [],
  },
  {
    name: 'EventBus.publish, 5 async subscribers, metrics on',
    publish: () => measuredAsync.publish(Placed, payload),
    samples: [],
  },
  {
    name: '@nestjs/cqrs EventBus.publish (not awaitable)',
    publish: () => nestEvents.publish(new PlacedEvent(1, 10)),
    samples: [],
  },
];
// Warm-up: JIT of every path.
for (const variant of inlineVariants) await tightLoop(variant.publish);
for (let round = 1; round <= rounds; round++) {
  for (const variant of inlineVariants) variant.samples.push(await tightLoop(variant.publish));
}
const inlineNs = inlineVariants.map((v) => median(v.samples));
const [directFiveNs, publishInlineNs, , , directAsyncNs, publishAsyncNs, nestPublishNs] = inlineNs as [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];
console.log(inlineVariants.map((v, i) => `${v.name}: ${formatNs(inlineNs[i] ?? Number.NaN)}`).join('\n'));

// ---- Pooled: run after the inline loops (see above) ----

const contenders: { name: string; start: () => Promise<Fanout>; samples: number[] }[] = [
  { name: 'EventBus.publish, 4 worker subscribers', start: ours, samples: [] },
  { name: 'raw piscina.run × 4, awaited together', start: rawPiscina, samples: [] },
];
for (let round = 1; round <= rounds; round++) {
  for (const contender of contenders) {
    const fanout = await contender.start();
    await drive(fanout, 300); // warm-up: threads started, JIT on both sides
    contender.samples.push(await drive(fanout, seconds * 1000));
    await fanout.close();
  }
  console.log(`round ${round}/${rounds} done`);
}
const [oursPooled, piscinaPooled] = contenders.map((c) => median(c.samples)) as [number, number];
const rate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
console.log(
  `deliveries/s at ${IN_FLIGHT} publishes in flight: ours ${rate(oursPooled)}, piscina ${rate(piscinaPooled)}`,
);

/** Each row against its own baseline: sync subscribers against sync calls, async against async. */
function overDirect(i: number, ns: number): [string, string] {
  if (i === 0 || i === 4) return ['—', '×1.00'];
  const base = i === 5 ? directAsyncNs : directFiveNs;
  const over = ns - base;
  return [`${over < 0 ? '−' : '+'}${formatNs(Math.abs(over))}`, `×${(ns / base).toFixed(2)}`];
}

writeResult({
  name: 'eventPublish',
  tables: [
    {
      title: 'One event to 5 inline no-op subscribers',
      columns: ['what', 'per publish', 'over direct', 'ratio'],
      rows: inlineVariants.map((v, i) => {
        const ns = inlineNs[i] ?? Number.NaN;
        return [v.name, formatNs(ns), ...overDirect(i, ns)];
      }),
      note:
        `Awaited publishes in a tight loop, ${loopPublishes.toLocaleString('en-US')} a round; medians of ${rounds} ` +
        'rounds, variants interleaved. The async row is compared with five awaited async calls, the others with ' +
        'five awaited plain calls. A publish awaits no subscriber that answered synchronously (its outcome is ' +
        'known at once), which is how it can cost less than the direct loop, which awaits each call.',
    },
    {
      title: `Event fan-out to ${WORKER_SUBSCRIBERS} worker subscribers, ${IN_FLIGHT} publishes in flight, ${threads} threads`,
      columns: ['what', 'deliveries/s', 'publishes/s', 'vs piscina'],
      rows: contenders.map((c) => {
        const perSec = median(c.samples);
        return [
          c.name,
          rate(perSec),
          rate(perSec / WORKER_SUBSCRIBERS),
          `×${(perSec / piscinaPooled).toFixed(2)}`,
        ];
      }),
      note:
        `Medians of ${rounds} rounds of ${seconds} s; each pool started afresh per round, the two ` +
        'interleaved. A delivery is one subscriber call completed; raw piscina runs a no-op task four times ' +
        `per publish. Rounds (deliveries/s): ${contenders.map((c) => `${c.name}: ${c.samples.map(rate).join(', ')}`).join('; ')}.`,
    },
  ],
  charts: [
    {
      title: `Worker fan-out deliveries/s, ${IN_FLIGHT} publishes in flight (${threads} threads)`,
      unit: 'deliveries/s',
      bars: contenders.map((c, i) => ({
        label: c.name,
        value: median(c.samples),
        ...(i === 0 ? { ours: true } : {}),
      })),
    },
  ],
  values: {
    publishInlineNs,
    publishAsyncNs,
    nestPublishNs,
    directFiveNs,
    directAsyncNs,
    oursDeliveriesPerSec: oursPooled,
    piscinaDeliveriesPerSec: piscinaPooled,
    pooledRatio: oursPooled / piscinaPooled,
  },
});
const figures = measured.getMetrics();
console.log(`\ncounted ${figures.executions} subscriber calls on the metrics-on bus`);
await app.close();
