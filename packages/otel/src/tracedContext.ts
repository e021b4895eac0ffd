import type { MessageKind } from '@cqrs-pool/core';
import type {
  BusClient,
  EventClient,
  ExecuteOptions,
  HandlerContext,
  PublishOptions,
  QueryClient,
  StreamOptions,
} from '@cqrs-pool/core/worker';
import type { SpanContext } from '@opentelemetry/api';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { formatTraceparent } from './traceparent.js';

/**
 * A `ctx` whose nested calls (`ctx.commands` / `ctx.queries` / `ctx.events`) carry the span active when they are made —
 * or `fallback` when none is (a thread without a context manager) — as their `traceparent`, so the nested
 * dispatch span is its child rather than a sibling. The rest is `ctx`'s own. A `traceparent` the handler
 * passes in `options.metadata` wins.
 */
export function tracedContext(ctx: HandlerContext, fallback?: SpanContext): HandlerContext {
  const commands = tracedClient(ctx.commands, fallback);
  const queries = tracedQueries(ctx.queries, fallback);
  const events = tracedEvents(ctx.events, fallback);
  return {
    name: ctx.name,
    kind: ctx.kind,
    subscriber: ctx.subscriber,
    // A getter: a pool thread's signal is made on first use.
    get signal() {
      return ctx.signal;
    },
    isCancelled: () => ctx.isCancelled(),
    metadata: ctx.metadata,
    commands,
    queries,
    events,
    // A getter too: `ctx.logger` is made on first use.
    get logger() {
      return ctx.logger;
    },
  };
}

function tracedClient<K extends MessageKind>(client: BusClient<K>, fallback?: SpanContext): BusClient<K> {
  const execute = (target: string, input: unknown, options?: ExecuteOptions): Promise<unknown> => {
    const carried = carriedContext(fallback);
    if (carried === undefined) return client.execute(target, input, options);
    return client.execute(target, input, { ...options, metadata: { ...carried, ...options?.metadata } });
  };
  return { execute } as BusClient<K>;
}

function tracedQueries(client: QueryClient, fallback?: SpanContext): QueryClient {
  const { execute } = tracedClient(client, fallback);
  const stream = (target: string, input: unknown, options?: StreamOptions) => {
    const carried = carriedContext(fallback);
    if (carried === undefined) return client.stream(target, input, options);
    return client.stream(target, input, { ...options, metadata: { ...carried, ...options?.metadata } });
  };
  return { execute, stream } as QueryClient;
}

function tracedEvents(client: EventClient, fallback?: SpanContext): EventClient {
  const publish = (target: string, payload: unknown, options?: PublishOptions) => {
    const carried = carriedContext(fallback);
    if (carried === undefined) return client.publish(target, payload, options);
    return client.publish(target, payload, { ...options, metadata: { ...carried, ...options?.metadata } });
  };
  return { publish } as EventClient;
}

/** The W3C trace context of the active span (or `fallback`) as metadata; undefined when there is none. */
function carriedContext(fallback: SpanContext | undefined): Record<string, string> | undefined {
  const active = trace.getSpanContext(context.active());
  const current = active !== undefined && isSpanContextValid(active) ? active : fallback;
  if (current === undefined || !isSpanContextValid(current)) return undefined;
  const carried: Record<string, string> = { traceparent: formatTraceparent(current) };
  const tracestate = current.traceState?.serialize();
  if (tracestate !== undefined && tracestate !== '') carried.tracestate = tracestate;
  return carried;
}
