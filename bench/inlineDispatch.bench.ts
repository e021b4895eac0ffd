/**
 * What the bus costs an inline call on the main thread, side by side in one run: a direct awaited call, a
 * plain `Map` + function dispatcher (the least any bus can do), `execute` with metrics off and on (the
 * shared-memory recording: in-flight ±, counts, and the handler timed with two `performance.now()` reads),
 * our `QueryBus`, and `@nestjs/cqrs`'s `CommandBus.execute` / `QueryBus.execute` with the handlers registered
 * through Nest's DI (`NestFactory.createApplicationContext` of a module importing `CqrsModule.forRoot()`).
 * The same calls in a tight loop, as a service makes them, are in inlineLoop.bench.ts.
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
import { type MedianRow, medianOf, report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const Sum = defineQuery('Sum', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const input = { a: 1, b: 2 };

const bare = new CommandBus({ metrics: false });
bare.registerHandler(Add, add);
const measured = new CommandBus({ metrics: true });
measured.registerHandler(Add, add);
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
    };
  },
  ['Inline command dispatch', 'Inline query dispatch'],
);
const figures = measured.getMetrics().handlers.Add;
console.log(
  `\ncounted ${figures?.executions} executions on the metrics-on bus, p50 ${figures?.latency.p50} ms`,
);
await app.close();
