/**
 * `tracing()` and `@cqrs-pool/otel/worker` end to end: real pool threads, the SDK's in-memory exporter on the
 * main thread, and the threads' finished spans posted back over a BroadcastChannel (see fixtures/handlers.ts).
 * Runs against the built packages and fixtures (`node build.mjs --fast` first).
 */
import { BroadcastChannel } from 'node:worker_threads';
import {
  CommandBus,
  defineCommand,
  defineQuery,
  EventBus,
  inWorker,
  isCqrsError,
  type Metadata,
  type Middleware,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import { tracing } from '@cqrs-pool/otel';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Inner, Manual, Outer, Ship, Shipped, Traced } from './fixtures/handlers.js';
import { SPAN_CHANNEL, type SpanRecord, toRecord } from './spanRecord.js';

const handlers = new URL('../../../dist/packages/otel/test/fixtures/handlers.js', import.meta.url);

/** Inline command: answers with the metadata its handler saw. */
const Echo = defineCommand('Echo', { input: z.object({}), output: z.custom<Metadata>() });
/** Inline command that throws. */
const Broken = defineCommand('Broken', { input: z.object({}) });
/** Inline command that makes a nested inline query (`Leaf`). */
const Branch = defineCommand('Branch', { input: z.object({}), output: z.string() });
const Leaf = defineQuery('Leaf', { input: z.object({}), output: z.string() });

const contextManager = new AsyncLocalStorageContextManager();
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('otel.test');
const channel = new BroadcastChannel(SPAN_CHANNEL);
const workerSpans: SpanRecord[] = [];
channel.onmessage = (event: unknown) => workerSpans.push((event as { data: SpanRecord }).data);

let pool: WorkerPool;
let commands: CommandBus;
let queries: QueryBus;
let events: EventBus;
/** A bus with `tracing()` on the global tracer, which no SDK backs on this thread: a no-op. */
let untraced: CommandBus;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  pool = new WorkerPool({ threads: 1 });
  commands = new CommandBus({ pool, middleware: [tracing({ tracer })] });
  queries = new QueryBus({ pool, middleware: [tracing({ tracer })] });
  commands.registerHandler(Echo, (_input, ctx) => ({ ...ctx.metadata }));
  commands.registerHandler(Broken, () => {
    throw new Error('broken on purpose');
  });
  commands.registerHandler(Branch, async (_input, ctx) => `branch(${await ctx.queries.execute(Leaf, {})})`);
  queries.registerHandler(Leaf, () => 'leaf');
  commands.registerHandler(Traced, inWorker(handlers, 'traced'));
  commands.registerHandler(Outer, inWorker(handlers, 'outer'));
  queries.registerHandler(Inner, inWorker(handlers, 'inner'));
  queries.registerHandler(Manual, inWorker(handlers, 'manual'));
  events = new EventBus({ pool, middleware: [tracing({ tracer })] });
  events.subscribe(Shipped, 'mailer', () => {});
  events.subscribe(Shipped, 'ledger', () => {
    throw new Error('ledger down');
  });
  events.subscribe(Shipped, 'warehouse', inWorker(handlers, 'shipped'));
  commands.registerHandler(Ship, inWorker(handlers, 'ship'));
  await Promise.all([commands.ready(), queries.ready(), events.ready()]);
  untraced = new CommandBus({ middleware: [tracing()] });
  untraced.registerHandler(Echo, (_input, ctx) => ({ ...ctx.metadata }));
});

afterAll(async () => {
  await Promise.all([commands?.close(), queries?.close(), events?.close(), untraced?.close()]);
  await pool?.close();
  channel.close();
  await provider.shutdown();
  context.disable();
});

beforeEach(() => {
  exporter.reset();
  workerSpans.length = 0;
});

function mainSpans(): SpanRecord[] {
  return exporter.getFinishedSpans().map((s) => toRecord(s, 'main'));
}

/** The one finished span named `name`, on either thread, waiting for thread spans still in flight. */
async function spanNamed(name: string): Promise<SpanRecord> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = [...mainSpans(), ...workerSpans].filter((s) => s.name === name);
    if (found.length > 1) throw new Error(`${found.length} spans named ${name}`);
    if (found[0] !== undefined) return found[0];
    if (Date.now() > deadline) throw new Error(`no span named ${name}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('tracing() on the main thread', () => {
  it('records one INTERNAL span per inline dispatch, with its attributes and status OK', async () => {
    const seen = await commands.execute(Echo, {}, { metadata: { correlationId: 'c-1' } });
    const span = await spanNamed('command Echo');
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.kind).toBe(SpanKind.INTERNAL);
    expect(span.attributes).toEqual({ 'cqrs.handler': 'Echo', 'cqrs.kind': 'command', 'cqrs.outcome': 'ok' });
    expect(span.status.code).toBe(SpanStatusCode.OK);
    expect(span.parentSpanId).toBeUndefined();
    // The handler sees the span's W3C traceparent beside the caller's metadata.
    expect(seen).toEqual({ correlationId: 'c-1', traceparent: `00-${span.traceId}-${span.spanId}-01` });
  });

  it('is a child of the span active at execute', async () => {
    const request = tracer.startSpan('request');
    await context.with(trace.setSpan(context.active(), request), () => commands.execute(Echo, {}));
    request.end();
    const span = await spanNamed('command Echo');
    expect(span.traceId).toBe(request.spanContext().traceId);
    expect(span.parentSpanId).toBe(request.spanContext().spanId);
  });

  it('marks a failing handler ERROR with HANDLER_FAILED and records the exception', async () => {
    const err = await commands.execute(Broken, {}).catch((e: unknown) => e);
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    const span = await spanNamed('command Broken');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    expect(span.attributes['cqrs.outcome']).toBe('error');
    expect(span.attributes['cqrs.error_code']).toBe('HANDLER_FAILED');
    expect(span.events).toEqual(['exception']);
  });

  it('makes a nested inline call a child of its caller’s dispatch span', async () => {
    expect(await commands.execute(Branch, {})).toBe('branch(leaf)');
    const branch = await spanNamed('command Branch');
    const leaf = await spanNamed('query Leaf');
    expect(leaf.traceId).toBe(branch.traceId);
    expect(leaf.parentSpanId).toBe(branch.spanId);
  });

  it('passes calls through untouched when no SDK backs the tracer', async () => {
    expect(await untraced.execute(Echo, {}, { metadata: { correlationId: 'c-2' } })).toEqual({
      correlationId: 'c-2',
    });
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});

describe('trace context in pool threads', () => {
  it('makes the tracedHandle span in the thread a child of the dispatch span', async () => {
    expect(await commands.execute(Traced, { fail: false })).toBe('traced');
    const dispatch = await spanNamed('command Traced');
    const handler = await spanNamed('handler Traced');
    expect(handler.thread).toBe('worker');
    expect(handler.traceId).toBe(dispatch.traceId);
    expect(handler.parentSpanId).toBe(dispatch.spanId);
    expect(handler.attributes).toEqual({
      'cqrs.handler': 'Traced',
      'cqrs.kind': 'command',
      'cqrs.outcome': 'ok',
    });
    expect(handler.status.code).toBe(SpanStatusCode.OK);
  });

  it('marks both spans ERROR when the worker handler throws', async () => {
    const err = await commands.execute(Traced, { fail: true }).catch((e: unknown) => e);
    expect(isCqrsError(err, 'HANDLER_FAILED')).toBe(true);
    const dispatch = await spanNamed('command Traced');
    const handler = await spanNamed('handler Traced');
    expect(dispatch.status.code).toBe(SpanStatusCode.ERROR);
    expect(dispatch.attributes['cqrs.error_code']).toBe('HANDLER_FAILED');
    expect(handler.status).toEqual({ code: SpanStatusCode.ERROR, message: 'failed on purpose' });
    expect(handler.events).toEqual(['exception']);
    expect(handler.parentSpanId).toBe(dispatch.spanId);
  });

  it('makes a nested call from a thread a child of the handler span that made it', async () => {
    expect(await commands.execute(Outer, {})).toBe('outer(inner)');
    const outerDispatch = await spanNamed('command Outer');
    const outerHandler = await spanNamed('handler Outer');
    const innerDispatch = await spanNamed('query Inner');
    const innerHandler = await spanNamed('handler Inner');
    expect(new Set([outerHandler, innerDispatch, innerHandler].map((s) => s.traceId))).toEqual(
      new Set([outerDispatch.traceId]),
    );
    expect(outerHandler.parentSpanId).toBe(outerDispatch.spanId);
    expect(innerDispatch.thread).toBe('main');
    expect(innerDispatch.parentSpanId).toBe(outerHandler.spanId);
    expect(innerHandler.parentSpanId).toBe(innerDispatch.spanId);
  });

  it('takes a nested call’s parent from the thread’s traceparent even when another span is active', async () => {
    // Whatever context the main thread happens to run a nested call in (here an unrelated span, as a
    // leaking instrumentation would leave), its parent is the thread's handler span.
    const unrelated = tracer.startSpan('unrelated');
    const leak: Middleware = (next) => (call) =>
      call.originThread === undefined
        ? next(call)
        : context.with(trace.setSpan(ROOT_CONTEXT, unrelated), next, undefined, call);
    // A pool of its own: nested calls go to the first bus of each kind made on a pool.
    const ownPool = new WorkerPool({ threads: 1 });
    const ownCommands = new CommandBus({ pool: ownPool, middleware: [leak, tracing({ tracer })] });
    const ownQueries = new QueryBus({ pool: ownPool, middleware: [leak, tracing({ tracer })] });
    try {
      ownCommands.registerHandler(Outer, inWorker(handlers, 'outer'));
      ownQueries.registerHandler(Inner, inWorker(handlers, 'inner'));
      expect(await ownCommands.execute(Outer, {})).toBe('outer(inner)');
    } finally {
      await Promise.all([ownCommands.close(), ownQueries.close()]);
      await ownPool.close();
      unrelated.end();
    }
    const outerHandler = await spanNamed('handler Outer');
    const innerDispatch = await spanNamed('query Inner');
    expect(innerDispatch.parentSpanId).toBe(outerHandler.spanId);
  });

  it('parents spans a plain handler starts under withTraceContext to the dispatch span', async () => {
    expect(await queries.execute(Manual, {})).toBe('manual');
    const dispatch = await spanNamed('query Manual');
    const manual = await spanNamed('manual work');
    expect(manual.thread).toBe('worker');
    expect(manual.traceId).toBe(dispatch.traceId);
    expect(manual.parentSpanId).toBe(dispatch.spanId);
  });
});

describe('event subscribers', () => {
  it('get one span each, children of the publishing span, a failing one marked ERROR', async () => {
    const publishing = tracer.startSpan('publish request');
    const report = await context.with(trace.setSpan(context.active(), publishing), () =>
      events.publish(Shipped, { orderId: 1 }),
    );
    publishing.end();
    expect(report.delivered).toEqual(['mailer', 'warehouse']);
    const { traceId, spanId } = publishing.spanContext();
    for (const subscriber of ['mailer', 'ledger', 'warehouse']) {
      const span = await spanNamed(`event Shipped:${subscriber}`);
      expect(span.traceId).toBe(traceId);
      expect(span.parentSpanId).toBe(spanId);
      expect(span.attributes).toMatchObject({
        'cqrs.handler': 'Shipped',
        'cqrs.kind': 'event',
        'cqrs.subscriber': subscriber,
        'cqrs.outcome': subscriber === 'ledger' ? 'error' : 'ok',
      });
    }
    expect((await spanNamed('event Shipped:ledger')).status.code).toBe(SpanStatusCode.ERROR);
    // The worker subscriber's own span, in its thread, under its subscriber span.
    const inThread = await spanNamed('handler Shipped:warehouse');
    expect(inThread.thread).toBe('worker');
    expect(inThread.attributes['cqrs.subscriber']).toBe('warehouse');
    expect(inThread.parentSpanId).toBe((await spanNamed('event Shipped:warehouse')).spanId);
  });

  it('a publish from a traced worker handler parents its subscribers’ spans to that handler', async () => {
    expect(await commands.execute(Ship, { orderId: 2 })).toBe(2);
    const handler = await spanNamed('handler Ship');
    for (const subscriber of ['mailer', 'ledger', 'warehouse']) {
      const span = await spanNamed(`event Shipped:${subscriber}`);
      expect(span.traceId).toBe(handler.traceId);
      expect(span.parentSpanId).toBe(handler.spanId);
    }
  });
});
