import { isCqrsError } from '@cqrs-pool/core/worker';
import type { Span } from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';

/**
 * Ends `span` as failed by `err`: `cqrs.outcome` `'error'`, `cqrs.error_code` when it is a `CqrsError`, the
 * exception recorded, status ERROR with its message.
 * @internal
 */
export function endFailed(span: Span, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  span.setAttribute('cqrs.outcome', 'error');
  if (isCqrsError(err)) span.setAttribute('cqrs.error_code', err.code);
  span.recordException(err instanceof Error ? err : message);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}
