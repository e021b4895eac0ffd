import type { HandlerContext } from '@cqrs-pool/core/worker';
import { context } from '@opentelemetry/api';
import { traceContextOf } from './traceContextOf.js';

/**
 * Runs `fn` with the call's dispatch span (from `ctx.metadata.traceparent`) as the active parent, so spans a
 * handler starts in its pool thread are children of it. Needs a tracer provider, and for the parent to
 * survive an `await` a context manager, registered in the thread (see the package README).
 */
export function withTraceContext<T>(ctx: Pick<HandlerContext, 'metadata'>, fn: () => T): T {
  return context.with(traceContextOf(ctx.metadata), fn);
}
