/**
 * What the bus costs an inline call on the main thread, side by side in one run: a direct awaited call, a
 * plain `Map` + function dispatcher (the least any bus can do), `execute` with metrics off and on (the
 * shared-memory recording: in-flight ±, counts, and the handler timed with two `performance.now()` reads),
 * our `QueryBus`, and `@nestjs/cqrs`'s `CommandBus.execute` / `QueryBus.execute` with the handlers registered
 * through Nest's DI (`NestFactory.createApplicationContext` of a module importing `CqrsModule.forRoot()`).
 * Then the same as a service calls it, a tight loop of awaited calls, for a sync and an async handler: the
 * nanoseconds the bus adds to a direct awaited call (mitata's per-iteration cost would shrink the ratios).
 *
 *   node build.mjs --fast && node dist/bench/inlineDispatch.bench.js [--json]
 */
import 'reflect-metadata';
import { CommandBus, defineCommand, defineQuery, QueryBus } from '@cqrs-pool/core';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  CommandHandler,
  CqrsModule,
  type ICommandHandler,
  type IQueryHandler,
  CommandBus as NestCommandBus,
  QueryBus as NestQueryBus,
  QueryHandler,
} from '@nestjs/cqrs';
import { bench, do_not_optimize, group } from 'mitata';
import { z } from 'zod';
import { formatNs, type MedianRow, median, medianOf, type ResultTable, report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const Sum = defineQuery('Sum', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const addAsync = async (input: { a: number; b: number }): Promise<number> => input.a + input.b;
const input = { a: 1, b: 2 };

const bare = new CommandBus({ metrics: false });
bare.registerHandler(Add, add);
const measured = new CommandBus({ metrics: true });
measured.registerHandler(Add, add);
const bareAsync = new CommandBus({ metrics: false });
bareAsync.registerHandler(Add, addAsync);
const measuredAsync = new CommandBus({ metrics: true });
measuredAsync.registerHandler(Add, addAsync);
const queries = new QueryBus({ metrics: true });
queries.registerHandler(Sum, add);

/** What every bus does at the least: look the handler up by name, call it, await it. */
const table = new Map<string, (input: { a: number; b: number }) => unknown>([['Add', add]]);
const dispatch = async (name: string, payload: { a: number; b: number }): Promise<unknown> => {
  const handler = table.get(name);
  if (handler === undefined) throw new Error(`no handler for ${name}`);
  return handler(payload);
};

// Nest's CQRS: a command or query is a class instance, routed by its constructor to an injectable handler.
// Decorators applied as the functions they are, so this file needs no decorator compilation.
class AddCommand {
  constructor(
    readonly a: number,
    readonly b: number,
  ) {}
}
class SumQuery {
  constructor(
    readonly a: number,
    readonly b: number,
  ) {}
}
class AddHandler implements ICommandHandler<AddCommand, number> {
  async execute(command: AddCommand): Promise<number> {
    return add(command);
  }
}
class SumHandler implements IQueryHandler<SumQuery, number> {
  async execute(query: SumQuery): Promise<number> {
    return add(query);
  }
}
CommandHandler(AddCommand)(AddHandler);
Injectable()(AddHandler);
QueryHandler(SumQuery)(SumHandler);
Injectable()(SumHandler);
class AppModule {}
Module({ imports: [CqrsModule.forRoot()], providers: [AddHandler, SumHandler] })(AppModule);
const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
await app.init();
const nestCommands = app.get(NestCommandBus);
const nestQueries = app.get(NestQueryBus);
if ((await nestCommands.execute(new AddCommand(1, 2))) !== 3) throw new Error('nest command bus not wired');

group('one inline command, awaited', () => {
  bench('direct: await handler(input)', async () => {
    do_not_optimize(await add(input));
  }).baseline(true);
  bench('Map + function dispatcher', async () => {
    do_not_optimize(await dispatch('Add', input));
  });
  bench('bus.execute, metrics off', async () => {
    do_not_optimize(await bare.execute(Add, input));
  });
  bench('bus.execute, metrics on', async () => {
    do_not_optimize(await measured.execute(Add, input));
  });
  bench('@nestjs/cqrs CommandBus.execute', async () => {
    do_not_optimize(await nestCommands.execute(new AddCommand(1, 2)));
  });
});

group('one inline query, awaited', () => {
  bench('direct: await handler(input)', async () => {
    do_not_optimize(await add(input));
  }).baseline(true);
  bench('QueryBus.execute, metrics on', async () => {
    do_not_optimize(await queries.execute(Sum, input));
  });
  bench('@nestjs/cqrs QueryBus.execute', async () => {
    do_not_optimize(await nestQueries.execute(new SumQuery(1, 2)));
  });
});

// ---- The way a service calls: a tight loop of awaited calls ----
// mitata's own per-iteration cost (its loop, its timer reads) lands on the baseline too and shrinks every
// ratio; a tight loop shows what the bus adds to an awaited call. Rounds, variants interleaved, medians.

const loopCalls = 1_000_000;
const loopRounds = 7;
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
const loopVariants: LoopVariant[] = [
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
for (const variant of loopVariants) await tightLoop(variant.call); // warm-up: JIT of every path
for (let round = 0; round < loopRounds; round++) {
  for (const variant of loopVariants) variant.samples.push(await tightLoop(variant.call));
}
const loopNs = loopVariants.map((v) => median(v.samples));
const addedNs = (i: number): number => {
  const base = loopVariants[i]?.base;
  return base === undefined ? 0 : (loopNs[i] as number) - (loopNs[base] as number);
};
console.log('tight loop:');
loopVariants.forEach((v, i) => {
  console.log(
    `  ${v.name.padEnd(46)} ${formatNs(loopNs[i] as number).padStart(9)}  +${formatNs(addedNs(i))}`,
  );
});
const tightTable: ResultTable = {
  title: 'Inline command dispatch, tight loop',
  columns: ['what', 'per call', 'added over the direct call', 'ratio'],
  rows: loopVariants.map((v, i) => {
    const base = v.base === undefined ? (loopNs[i] as number) : (loopNs[v.base] as number);
    return [
      v.name,
      formatNs(loopNs[i] as number),
      v.base === undefined ? '—' : `${addedNs(i) < 0 ? '−' : '+'}${formatNs(Math.abs(addedNs(i)))}`,
      `×${((loopNs[i] as number) / base).toFixed(2)}`,
    ];
  }),
  note:
    `\`for (…) await call()\`, ${loopCalls.toLocaleString('en-US')} calls a round; medians of ${loopRounds} ` +
    'rounds, variants interleaved. Each bus row is compared with the direct call of the same handler.',
};

const commandRow = (rows: MedianRow[], name: string) =>
  rows.find((r) => r.group === rows[0]?.group && r.name === name)?.medianNs ?? Number.NaN;
await report(
  'inlineDispatch',
  (rows) => {
    const direct = commandRow(rows, 'direct: await handler(input)');
    const execute = commandRow(rows, 'bus.execute, metrics on');
    const nest = commandRow(rows, '@nestjs/cqrs CommandBus.execute');
    return {
      directNs: direct,
      executeNs: execute,
      executeOverDirect: execute / direct,
      nestCommandNs: nest,
      nestCommandOverExecute: nest / execute,
      queryExecuteNs: medianOf(rows, 'QueryBus.execute, metrics on'),
      nestQueryNs: medianOf(rows, '@nestjs/cqrs QueryBus.execute'),
      loopDirectNs: loopNs[0] as number,
      loopAddedOnNs: addedNs(1),
      loopAddedOffNs: addedNs(2),
      loopAddedAsyncOnNs: addedNs(4),
      loopAddedAsyncOffNs: addedNs(5),
    };
  },
  ['Inline command dispatch', 'Inline query dispatch'],
  { tables: [tightTable] },
);
const figures = measured.getMetrics().handlers.Add;
console.log(
  `\ncounted ${figures?.executions} executions on the metrics-on bus, p50 ${figures?.latency.p50} ms`,
);
await app.close();
