/**
 * What the bus costs an inline call on the main thread, side by side in one run: a direct awaited call,
 * `execute` with metrics off, and `execute` with metrics on (the shared-memory recording: in-flight ±,
 * counts, and the handler timed with two `performance.now()` reads).
 *
 *   node build.mjs --fast && node dist/bench/inlineDispatch.bench.js [--json]
 */
import { CommandBus, defineCommand } from '@cqrs-pool/core';
import { bench, do_not_optimize, group } from 'mitata';
import { z } from 'zod';
import { report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const input = { a: 1, b: 2 };

const bare = new CommandBus({ metrics: false });
bare.registerHandler(Add, add);
const measured = new CommandBus({ metrics: true });
measured.registerHandler(Add, add);

group('one inline call, awaited', () => {
  bench('direct: await handler(input)', async () => {
    do_not_optimize(await add(input));
  }).baseline(true);
  bench('bus.execute, metrics off', async () => {
    do_not_optimize(await bare.execute(Add, input));
  });
  bench('bus.execute, metrics on', async () => {
    do_not_optimize(await measured.execute(Add, input));
  });
});

await report('inlineDispatch');
const figures = measured.getMetrics().handlers.Add;
console.log(
  `\ncounted ${figures?.executions} executions on the metrics-on bus, p50 ${figures?.latency.p50} ms`,
);
