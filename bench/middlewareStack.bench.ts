/**
 * What a realistic middleware stack costs an inline call, side by side in one run: `execute` with no
 * middleware, with validation alone (the zod parse), and with the full stack — logging (level off),
 * validation, rate limit (never limiting), circuit breaker (closed), timeout — metrics on throughout.
 * Target: the full stack within ~1 µs of "validation alone" (the zod parse is the user's own cost).
 *
 *   node build.mjs --fast && node dist/bench/middlewareStack.bench.js [--json]
 */
import {
  CommandBus,
  circuitBreaker,
  defineCommand,
  logging,
  type Middleware,
  rateLimit,
  timeout,
  validation,
} from '@cqrs-pool/core';
import { bench, do_not_optimize, group } from 'mitata';
import pino from 'pino';
import { z } from 'zod';
import { type MedianRow, medianOf, report } from './report.js';

const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int().min(1), username: z.string().min(3).max(50), email: z.email() }),
  output: z.object({ id: z.number() }),
});
const input = { userId: 123, username: 'john_doe', email: 'john@example.com' };
const handler = (i: { userId: number }) => ({ id: i.userId });

function busWith(middleware: Middleware[]): CommandBus {
  const bus = new CommandBus({ middleware });
  bus.registerHandler(CreateUser, handler);
  return bus;
}

const silent = pino({ level: 'silent' });
const none = busWith([]);
const validated = busWith([validation()]);
const stack = busWith([
  logging(silent),
  validation(),
  rateLimit({ limit: 1_000_000_000, windowMs: 1000 }),
  circuitBreaker(),
  timeout(5_000),
]);

group('one inline command, awaited, metrics on', () => {
  bench('execute, no middleware', async () => {
    do_not_optimize(await none.execute(CreateUser, input));
  }).baseline(true);
  bench('execute, validation only (zod parse)', async () => {
    do_not_optimize(await validated.execute(CreateUser, input));
  });
  bench('execute, full stack', async () => {
    do_not_optimize(await stack.execute(CreateUser, input));
  });
});

const stackMinusValidation = (rows: MedianRow[]) =>
  medianOf(rows, 'execute, full stack') - medianOf(rows, 'execute, validation only (zod parse)');
const rows = await report('middlewareStack', (r) => ({ stackMinusValidationNs: stackMinusValidation(r) }), [
  'Middleware stack, one inline command (metrics on)',
]);
const stackCost = stackMinusValidation(rows);
console.log(`\nfull stack minus validation alone: ${stackCost.toFixed(0)} ns per call (target ≤ ~1000 ns)`);
