/**
 * What circuitBreaker and rateLimit cost a successful inline call, side by side in one run: `execute` with no
 * middleware (the direct path), with a pass-through middleware (what any middleware costs: the chain and the
 * dispatcher's own continuation), and with the breaker (closed), the limiter (never limiting), and both.
 * Metrics on, as by default.
 *
 *   node build.mjs --fast && node dist/bench/breakerLimiter.bench.js [--json]
 */
import { CommandBus, circuitBreaker, defineCommand, type Middleware, rateLimit } from '@cqrs-pool/core';
import { bench, do_not_optimize, group } from 'mitata';
import { z } from 'zod';
import { report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const input = { a: 1, b: 2 };

function busWith(middleware: Middleware[]): CommandBus {
  const bus = new CommandBus({ middleware });
  bus.registerHandler(Add, add);
  return bus;
}

const passThrough: Middleware = (next) => (call) => next(call);
// A limit no benchmark run reaches: every call is admitted, so this is the admission path's cost.
const unlimited = () => rateLimit({ limit: 1_000_000_000, windowMs: 1000 });

const none = busWith([]);
const noop = busWith([passThrough]);
const breaker = busWith([circuitBreaker()]);
const limiter = busWith([unlimited()]);
const both = busWith([circuitBreaker(), unlimited()]);

group('one inline call, awaited, metrics on', () => {
  bench('execute, no middleware', async () => {
    do_not_optimize(await none.execute(Add, input));
  }).baseline(true);
  bench('execute, pass-through middleware', async () => {
    do_not_optimize(await noop.execute(Add, input));
  });
  bench('execute, circuitBreaker (closed)', async () => {
    do_not_optimize(await breaker.execute(Add, input));
  });
  bench('execute, rateLimit (admitting)', async () => {
    do_not_optimize(await limiter.execute(Add, input));
  });
  bench('execute, circuitBreaker + rateLimit', async () => {
    do_not_optimize(await both.execute(Add, input));
  });
});

await report('breakerLimiter', undefined, [
  'Circuit breaker and rate limit, one inline command (metrics on)',
]);
for (const [name, bus] of Object.entries({ breaker, limiter, both })) {
  const figures = bus.getMetrics().handlers.Add;
  console.log(
    `${name}: ${figures?.executions} executions, ${figures?.failures} failures, circuit ${figures?.circuit}`,
  );
}
