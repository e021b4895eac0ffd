import type { Metadata } from '@cqrs-pool/core/worker';
import type { Context } from '@opentelemetry/api';
import { context as contextApi, trace } from '@opentelemetry/api';
import { parseTraceparent, TRACEPARENT, TRACESTATE } from './traceparent.js';

/**
 * The OpenTelemetry context whose parent is the span named by `metadata.traceparent` (and `tracestate`),
 * built on `base` (the active context by default). Without a valid `traceparent`, `base` itself.
 */
export function traceContextOf(metadata: Metadata, base: Context = contextApi.active()): Context {
  const traceparent = metadata[TRACEPARENT];
  if (traceparent === undefined) return base;
  const parent = parseTraceparent(traceparent, metadata[TRACESTATE]);
  return parent === undefined ? base : trace.setSpanContext(base, parent);
}
