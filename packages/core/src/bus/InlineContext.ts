import type { BusClient, HandlerContext, Metadata } from '../handler/HandlerContext.js';
import type { Call } from '../middleware/Middleware.js';
import type { BusDirectory } from '../pool/BusDirectory.js';
import { callSignal, isAborted } from '../util/callAbort.js';

/**
 * `ctx` of a handler running on the main thread. Everything but the metadata is made on first use: most
 * handlers touch none of it, and this object is made per call.
 * @internal
 */
export class InlineContext implements HandlerContext {
  private ownController: AbortController | undefined;

  constructor(
    private readonly call: Call,
    private readonly directory: BusDirectory,
  ) {}

  get metadata(): Metadata {
    return this.call.metadata;
  }

  get signal(): AbortSignal {
    // Made here, on first read, when a timeout is around the call (see CancelToken.ts).
    const signal = callSignal(this.call);
    if (signal !== undefined) return signal;
    // A signal per call, not one shared never-aborting signal: listeners handlers add must not pile up.
    this.ownController ??= new AbortController();
    return this.ownController.signal;
  }

  isCancelled(): boolean {
    return isAborted(this.call);
  }

  get commands(): BusClient<'command'> {
    return this.directory.client('command', this.call.metadata);
  }

  get queries(): BusClient<'query'> {
    return this.directory.client('query', this.call.metadata);
  }
}
