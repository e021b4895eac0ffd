import type { Metadata } from '../handler/HandlerContext.js';
import type { Definition } from '../messages/Definition.js';
import type { Call } from './Middleware.js';

/**
 * A call as the dispatcher makes it, every field present: for code that needs a call outside a dispatch (the
 * cache's `invalidate` computing a key) and for tests that drive a middleware directly.
 * @internal
 */
export function newCall(
  definition: Definition,
  input: unknown,
  metadata: Metadata = {},
  name = definition.name,
): Call {
  return {
    name,
    kind: definition.kind,
    input,
    metadata,
    signal: undefined,
    definition,
    originThread: undefined,
    depth: 0,
    cancelGraceMs: undefined,
    cancel: undefined,
    ticket: undefined,
    order: undefined,
    stream: undefined,
  };
}
