// What a finished span looks like once it has crossed from a pool thread (or been read on the main thread):
// plain data, so both sides of otel.test.ts compare the same shape.
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** The BroadcastChannel the fixture's threads post their finished spans on (one test file per process). */
export const SPAN_CHANNEL = 'cqrs-pool-otel-test-spans';

export interface SpanRecord {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  status: { code: number; message?: string | undefined };
  attributes: Record<string, unknown>;
  events: string[];
  thread: 'main' | 'worker';
}

export function toRecord(span: ReadableSpan, thread: SpanRecord['thread']): SpanRecord {
  const { traceId, spanId } = span.spanContext();
  return {
    name: span.name,
    traceId,
    spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    status: { code: span.status.code, message: span.status.message },
    attributes: { ...span.attributes },
    events: span.events.map((e) => e.name),
    thread,
  };
}
