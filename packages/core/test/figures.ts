import type { HandlerMetrics, MetricsSnapshot } from '@cqrs-pool/core';

/** One handler's figures from `getMetrics()`; a handler missing from the snapshot fails the test. */
export function figures(bus: { getMetrics(): MetricsSnapshot }, name: string): HandlerMetrics {
  const found = bus.getMetrics().handlers[name];
  if (found === undefined) throw new Error(`getMetrics() lists no handler '${name}'`);
  return found;
}
