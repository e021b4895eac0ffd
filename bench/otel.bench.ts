/**
 * What `tracing()` costs an inline call, side by side in one run: `execute` with no middleware, with one
 * pass-through middleware (the price of having any chain), with `tracing()` on the global tracer and no SDK
 * registered (a no-op tracer: one `context.active()` and a no-op span per call), and with `tracing()` on an
 * SDK tracer exporting to the in-memory exporter under an AsyncLocalStorage context manager (a real span,
 * the traceparent formatted into a copy of the metadata, `context.with`). Metrics off throughout.
 * Most of the SDK row is the SDK's own span (ids, clock reads, the processor's export), not the middleware.
 *
 *   node build.mjs --fast && node dist/bench/otel.bench.js [--json]
 */
import { CommandBus, defineCommand, type Middleware } from '@cqrs-pool/core';
import { tracing } from '@cqrs-pool/otel';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { bench, do_not_optimize, group } from 'mitata';
import { z } from 'zod';
import { report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const add = (input: { a: number; b: number }): number => input.a + input.b;
const input = { a: 1, b: 2 };
const options = { metadata: { correlationId: 'c-1' } };

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

function busWith(middleware: Middleware[]): CommandBus {
  const bus = new CommandBus({ metrics: false, middleware });
  bus.registerHandler(Add, add);
  return bus;
}

const none = busWith([]);
const passThrough = busWith([(next) => (call) => next(call)]);
const noop = busWith([tracing()]);
const sdk = busWith([tracing({ tracer: provider.getTracer('bench') })]);

group('one inline call with metadata, awaited, metrics off', () => {
  bench('execute, no middleware', async () => {
    do_not_optimize(await none.execute(Add, input, options));
  }).baseline(true);
  bench('execute, pass-through middleware', async () => {
    do_not_optimize(await passThrough.execute(Add, input, options));
  });
  bench('execute, tracing() no SDK (no-op tracer)', function* () {
    context.disable();
    yield async () => {
      do_not_optimize(await noop.execute(Add, input, options));
    };
  });
  bench('execute, tracing() SDK + in-memory exporter', function* () {
    context.disable();
    context.setGlobalContextManager(contextManager.enable());
    let calls = 0;
    yield async () => {
      do_not_optimize(await sdk.execute(Add, input, options));
      // Keep the exporter's array from growing through millions of iterations.
      if (++calls % 4096 === 0) exporter.reset();
    };
  });
});

await report('otel', undefined, ['Tracing middleware, one inline command (metrics off)']);
