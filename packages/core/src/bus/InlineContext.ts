import type { BusClient, HandlerContext, Metadata } from '../handler/HandlerContext.js';
import type { Call } from '../middleware/Middleware.js';
import type { BusDirectory } from '../pool/BusDirectory.js';

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
    if (this.call.signal !== undefined) return this.call.signal;
    // A signal per call, not one shared never-aborting signal: listeners handlers add must not pile up.
    this.ownController ??= new AbortController();
    return this.ownController.signal;
  }

  isCancelled(): boolean {
    return this.call.signal?.aborted === true;
  }

  get commands(): BusClient<'command'> {
    return this.directory.client('command', this.call.metadata);
  }

  get queries(): BusClient<'query'> {
    return this.directory.client('query', this.call.metadata);
  }
}
