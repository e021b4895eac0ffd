import type { Call, Metadata, Middleware } from '@cqrs-pool/core';
import type { Context, Tracer } from '@opentelemetry/api';
import { context, isSpanContextValid, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { endFailed } from './endFailed.js';
import { traceContextOf } from './traceContextOf.js';
import { formatTraceparent, TRACESTATE } from './traceparent.js';

/** Options of {@link tracing}. */
export interface TracingOptions {
  /** The tracer spans are started with. Default: `trace.getTracer(tracerName)` from the global provider. */
  tracer?: Tracer;
  /** The name the default tracer is asked for. Default `'@cqrs-pool/otel'`. */
  tracerName?: string;
}

/**
 * A middleware that starts a span per dispatch, named `<kind> <name>` (`command CreateUser`), of kind
 * INTERNAL, with attributes `cqrs.handler`, `cqrs.kind`, `cqrs.outcome` (`'ok'` | `'error'`) and, on
 * failure, `cqrs.error_code` (the `CqrsError` code: `HANDLER_FAILED`, `TIMEOUT`, …), the exception recorded
 * and the status ERROR with its message; status OK on success. On an `EventBus` it starts one span per
 * subscriber of each publish, named `event <event>:<subscriber>`, with `cqrs.handler` the event and
 * `cqrs.subscriber` the subscriber, each a child of the span active where `publish` was called (the
 * publishing span).
 *
 * Its parent is the active span. A nested call made by a handler in a pool thread (and any call made
 * with no active span) takes its parent from `call.metadata.traceparent` instead: the main thread's active
 * context at that point says nothing about the thread's handler.
 *
 * The span is the active context while the rest of the chain runs, so inline handlers and their nested
 * calls are its children; and its W3C `traceparent` (and `tracestate`) is written into the call's metadata,
 * so it travels with the task into the pool thread (`ctx.metadata.traceparent`) where
 * `@cqrs-pool/otel/worker` picks it up. With no OpenTelemetry SDK registered the tracer is a no-op and a
 * call passes straight through, metadata untouched.
 *
 * Place it outermost among the bus middleware to time the whole chain (retries, waits for the breaker).
 */
export function tracing(options: TracingOptions = {}): Middleware {
  // A ProxyTracer when no tracer is given: it follows a global provider registered later.
  const tracer = options.tracer ?? trace.getTracer(options.tracerName ?? '@cqrs-pool/otel');
  return (next, chain) => {
    // An event subscriber's chain: `chain.name` is `<event>:<subscriber>`, the event is its definition's.
    const subscriber = chain.subscriber;
    const spanName = `${chain.kind} ${chain.name}`;
    const spanOptions = {
      kind: SpanKind.INTERNAL,
      attributes:
        subscriber === undefined
          ? { 'cqrs.handler': chain.name, 'cqrs.kind': chain.kind }
          : { 'cqrs.handler': chain.definition.name, 'cqrs.kind': chain.kind, 'cqrs.subscriber': subscriber },
    };
    return (call) => {
      const parent = parentOf(call);
      const span = tracer.startSpan(spanName, spanOptions, parent);
      const spanContext = span.spanContext();
      // A no-op tracer with no parent: nothing to carry, nothing to end.
      if (!isSpanContextValid(spanContext)) return next(call);
      const traceparent = formatTraceparent(spanContext);
      const tracestate = spanContext.traceState?.serialize();
      let metadata: Metadata;
      if (tracestate !== undefined && tracestate !== '') {
        metadata = { ...call.metadata, traceparent, tracestate };
      } else if (call.metadata[TRACESTATE] !== undefined) {
        // The parent's state must not outlive it on a span that has none.
        const { tracestate: _dropped, ...rest } = call.metadata;
        metadata = { ...rest, traceparent };
      } else {
        metadata = { ...call.metadata, traceparent };
      }
      let pending: Promise<unknown>;
      try {
        pending = context.with(trace.setSpan(parent, span), next, undefined, { ...call, metadata });
      } catch (err) {
        pending = Promise.reject(err);
      }
      return pending.then(
        (value) => {
          span.setAttribute('cqrs.outcome', 'ok');
          span.setStatus({ code: SpanStatusCode.OK });
          span.end();
          return value;
        },
        (err: unknown) => {
          endFailed(span, err);
          throw err;
        },
      );
    };
  };
}

function parentOf(call: Call): Context {
  const active = context.active();
  if (call.metadata.traceparent === undefined) return active;
  // A nested call from a pool thread reaches the main thread in whatever context its message port runs in:
  // the thread's traceparent is the only parent that means anything.
  if (call.originThread !== undefined || trace.getSpanContext(active) === undefined) {
    return traceContextOf(call.metadata, active);
  }
  return active;
}
