import type { SpanContext } from '@opentelemetry/api';
import { createTraceState, isSpanContextValid, TraceFlags } from '@opentelemetry/api';

/** The metadata key holding the W3C `traceparent` of the call's span. */
export const TRACEPARENT = 'traceparent';
/** The metadata key holding the W3C `tracestate`, when the span has one. */
export const TRACESTATE = 'tracestate';

// version-traceId-spanId-flags; a later version may append fields after the flags (W3C Trace Context §3.2).
const pattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Formats `00-<traceId>-<spanId>-<flags>`. Written here rather than through `propagation.inject`: the global
 * propagator is whatever the application registered (B3, Jaeger, none), while the metadata keys are always
 * W3C, so both ends agree without a propagator on either side.
 */
export function formatTraceparent(span: SpanContext): string {
  const flags = span.traceFlags & TraceFlags.SAMPLED ? '01' : '00';
  return `00-${span.traceId}-${span.spanId}-${flags}`;
}

/**
 * Parses a W3C `traceparent` (and optional `tracestate`) into a remote span context; undefined when it is
 * malformed or names the all-zero trace or span.
 */
export function parseTraceparent(traceparent: string, tracestate?: string): SpanContext | undefined {
  const match = pattern.exec(traceparent.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  // Version ff is invalid; version 00 has exactly four fields.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const context: SpanContext = {
    traceId: traceId as string,
    spanId: spanId as string,
    traceFlags: Number.parseInt(flags as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (tracestate !== undefined && tracestate !== '') context.traceState = createTraceState(tracestate);
  return isSpanContextValid(context) ? context : undefined;
}
