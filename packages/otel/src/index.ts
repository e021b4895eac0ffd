// The main-thread entry: `import { tracing } from '@cqrs-pool/otel'`. Handler modules in pool threads import
// `@cqrs-pool/otel/worker` instead.
export { traceContextOf } from './traceContextOf.js';
export { formatTraceparent, parseTraceparent, TRACEPARENT, TRACESTATE } from './traceparent.js';
export type { TracingOptions } from './tracing.js';
export { tracing } from './tracing.js';
