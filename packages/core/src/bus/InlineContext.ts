import type { EventClient } from '../handler/EventClient.js';
import type { BusClient, HandlerContext, Metadata, QueryClient } from '../handler/HandlerContext.js';
import type { Logger } from '../handler/Logger.js';
import { handlerLogger } from '../handler/Logger.js';
import type { MessageKind } from '../messages/Definition.js';
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
  private ownLogger: Logger | undefined;

  constructor(
    private readonly call: Call,
    private readonly directory: BusDirectory,
    /** The bus's `logger` option, or the no-op logger. */
    private readonly baseLogger: Logger,
    /** The event subscriber's name; undefined for commands and queries. */
    readonly subscriber: string | undefined,
  ) {}

  get name(): string {
    return this.call.name;
  }

  get kind(): MessageKind {
    return this.call.kind;
  }

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

  get logger(): Logger {
    this.ownLogger ??= handlerLogger(
      this.baseLogger,
      this.call.name,
      this.call.kind,
      this.call.metadata,
      this.subscriber,
    );
    return this.ownLogger;
  }

  // The origin thread goes on with the nested call: when a worker handler awaits this inline one, worker
  // handlers further down its chain must run on that thread, which is held until they finish.
  get commands(): BusClient<'command'> {
    return this.directory.client('command', this.call.metadata, this.call.originThread, this.call.depth + 1);
  }

  get queries(): QueryClient {
    return this.directory.queryClient(this.call.metadata, this.call.originThread, this.call.depth + 1);
  }

  get events(): EventClient {
    return this.directory.eventClient(this.call.metadata, this.call.originThread, this.call.depth + 1);
  }
}
