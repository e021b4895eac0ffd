import type { MessageKind } from '@cqrs-pool/core';
import type { BusClient, ExecuteOptions, HandlerContext } from '@cqrs-pool/core/worker';
import type { SpanContext } from '@opentelemetry/api';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { formatTraceparent } from './traceparent.js';

/**
 * A `ctx` whose nested calls (`ctx.commands` / `ctx.queries`) carry the span active when they are made —
 * or `fallback` when none is (a thread without a context manager) — as their `traceparent`, so the nested
 * dispatch span is its child rather than a sibling. The rest is `ctx`'s own. A `traceparent` the handler
 * passes in `options.metadata` wins.
 */
export function tracedContext(ctx: HandlerContext, fallback?: SpanContext): HandlerContext {
  const commands = tracedClient(ctx.commands, fallback);
  const queries = tracedClient(ctx.queries, fallback);
  return {
    name: ctx.name,
    kind: ctx.kind,
    // A getter: a pool thread's signal is made on first use.
    get signal() {
      return ctx.signal;
    },
    isCancelled: () => ctx.isCancelled(),
    metadata: ctx.metadata,
    commands,
    queries,
    // A getter too: `ctx.logger` is made on first use.
    get logger() {
      return ctx.logger;
    },
  };
}

function tracedClient<K extends MessageKind>(client: BusClient<K>, fallback?: SpanContext): BusClient<K> {
  const execute = (target: string, input: unknown, options?: ExecuteOptions): Promise<unknown> => {
    const active = trace.getSpanContext(context.active());
    const current = active !== undefined && isSpanContextValid(active) ? active : fallback;
    if (current === undefined || !isSpanContextValid(current)) return client.execute(target, input, options);
    const carried: Record<string, string> = { traceparent: formatTraceparent(current) };
    const tracestate = current.traceState?.serialize();
    if (tracestate !== undefined && tracestate !== '') carried.tracestate = tracestate;
    return client.execute(target, input, {
      ...options,
      metadata: { ...carried, ...options?.metadata },
    });
  };
  return { execute } as BusClient<K>;
}
