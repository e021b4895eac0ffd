// The entry handler modules import inside pool threads: `import { tracedHandle } from '@cqrs-pool/otel/worker'`.
// It pulls in no bus: only the OpenTelemetry API and `@cqrs-pool/core/worker`.
export { traceContextOf } from './traceContextOf.js';
export { tracedContext } from './tracedContext.js';
export type { TracedHandleOptions } from './tracedHandle.js';
export { tracedHandle } from './tracedHandle.js';
export { formatTraceparent, parseTraceparent, TRACEPARENT, TRACESTATE } from './traceparent.js';
export { withTraceContext } from './withTraceContext.js';
