import type { Definition } from '@cqrs-pool/core';
import type { HandlerFn, WorkerHandler } from '@cqrs-pool/core/worker';
import { handle } from '@cqrs-pool/core/worker';
import type { Tracer } from '@opentelemetry/api';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { endFailed } from './endFailed.js';
import { traceContextOf } from './traceContextOf.js';
import { tracedContext } from './tracedContext.js';

/** Options of {@link tracedHandle}. */
export interface TracedHandleOptions {
  /** The tracer the handler span is started with. Default: `trace.getTracer(tracerName)` in this thread. */
  tracer?: Tracer;
  /** The name the default tracer is asked for. Default `'@cqrs-pool/otel'`. */
  tracerName?: string;
}

/**
 * Like `handle()` from `@cqrs-pool/core/worker`, and runs `fn` inside a span `handler <name>` (kind
 * INTERNAL, attributes `cqrs.handler`, `cqrs.kind`, `cqrs.outcome`, `cqrs.error_code` when a `CqrsError`
 * fails it; for an event subscriber `handler <event>:<subscriber>` with `cqrs.subscriber`) whose parent is the dispatch span named by `ctx.metadata.traceparent` — the active context when
 * there is none. `fn` runs with the span active, and its nested calls carry it as their parent.
 *
 * The span is recorded only if the thread has a tracer provider: register one when the handler module
 * loads (see the package README); without one it is a no-op.
 */
export function tracedHandle<D extends Definition>(
  definition: D,
  fn: HandlerFn<D>,
  options: TracedHandleOptions = {},
): WorkerHandler<D> {
  const tracer = options.tracer ?? trace.getTracer(options.tracerName ?? '@cqrs-pool/otel');
  const spanName = `handler ${definition.name}`;
  const spanOptions = {
    kind: SpanKind.INTERNAL,
    attributes: { 'cqrs.handler': definition.name, 'cqrs.kind': definition.kind },
  };
  return handle(definition, async (input, ctx) => {
    const parent = traceContextOf(ctx.metadata);
    const subscriber = ctx.subscriber;
    const span =
      subscriber === undefined
        ? tracer.startSpan(spanName, spanOptions, parent)
        : tracer.startSpan(
            `${spanName}:${subscriber}`,
            { ...spanOptions, attributes: { ...spanOptions.attributes, 'cqrs.subscriber': subscriber } },
            parent,
          );
    const traced = tracedContext(ctx, span.spanContext());
    try {
      const value = await context.with(trace.setSpan(parent, span), fn, undefined, input, traced);
      span.setAttribute('cqrs.outcome', 'ok');
      span.setStatus({ code: SpanStatusCode.OK });
      span.end();
      return value;
    } catch (err) {
      endFailed(span, err);
      throw err;
    }
  });
}
