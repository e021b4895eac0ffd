import { CqrsError } from '../errors/CqrsError.js';
import type { ExecuteOptions, Metadata } from '../handler/HandlerContext.js';
import type { HandlerFn, WorkerHandler } from '../handler/handle.js';
import { isWorkerHandler } from '../handler/handle.js';
import type { Definition, InputOf, MessageKind, ResultOf } from '../messages/Definition.js';
import { compose } from '../middleware/compose.js';
import type { Call, Middleware, Next } from '../middleware/Middleware.js';
import type { NestedTarget } from '../pool/BusDirectory.js';
import { BusDirectory } from '../pool/BusDirectory.js';
import type { WorkerHandlerRef } from '../pool/inWorker.js';
import { isWorkerHandlerRef } from '../pool/inWorker.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import { abortError, raceAbort } from '../util/abortError.js';
import { InlineContext } from './InlineContext.js';

/** Options of {@link CommandBus} and {@link QueryBus}. */
export interface BusOptions {
  /** The pool that runs `inWorker()` handlers; needed only for those. Buses sharing a pool can call each other from handlers. */
  pool?: WorkerPool;
  /** Applied to every handler of the bus, outermost first, around per-handler middleware. */
  middleware?: readonly Middleware[];
}

/** Options of `registerHandler`. */
export interface RegisterOptions {
  /** Applied to this handler only, inside the bus-wide middleware. */
  middleware?: readonly Middleware[];
}

/** What `registerHandler` accepts: an inline function, an `inWorker()` reference, or a `handle()` value run inline. */
export type HandlerFor<D extends Definition> = HandlerFn<D> | WorkerHandlerRef | WorkerHandler<D>;

interface Registration {
  readonly definition: Definition;
  readonly chain: Next;
  readonly worker: { readonly moduleId: number; readonly exportName: string } | undefined;
  /** Set by `ready()` when the worker export cannot be loaded: calls fail with it at once. */
  broken: CqrsError | undefined;
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;
const noMetadata: Metadata = Object.freeze({});

/**
 * What both buses are: O(1) routing by name to a handler wrapped, once, in its middleware chain. The
 * subclasses only fix the kind.
 */
export abstract class Dispatcher<K extends MessageKind> implements NestedTarget {
  private readonly handlers = new Map<string, Registration>();
  private readonly busMiddleware: readonly Middleware[];
  private readonly pool: WorkerPool | undefined;
  private readonly directory: BusDirectory;
  private state = OPEN;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  protected constructor(
    readonly kind: K,
    options: BusOptions = {},
  ) {
    const busName = kind === 'command' ? 'CommandBus' : 'QueryBus';
    this.busMiddleware = checkMiddleware(options.middleware ?? [], `${busName}: options.middleware`);
    this.pool = options.pool;
    this.directory = this.pool?.directory ?? new BusDirectory();
    this.directory.attach(this);
  }

  /**
   * Registers the handler of `definition`: an inline function (runs on the main thread), `inWorker(url,
   * export)` (runs in the pool), or a `handle()` value (run inline). Its middleware chain is built here, once.
   * @throws CqrsError `INVALID_REGISTRATION` (bad definition, missing handler, worker handler without a
   * pool), `DUPLICATE_HANDLER` (the name has a handler), `CLOSED` (the bus is closed).
   */
  registerHandler<D extends Definition<K>>(
    definition: D,
    handler: HandlerFor<D>,
    options: RegisterOptions = {},
  ): void {
    if (this.state !== OPEN) throw new CqrsError('CLOSED', 'registerHandler: the bus is closed');
    const name = checkDefinition(definition, this.kind);
    if (this.handlers.has(name)) {
      throw new CqrsError('DUPLICATE_HANDLER', `${name}: a handler is already registered`, { handler: name });
    }
    const own = checkMiddleware(options.middleware ?? [], `${name}: options.middleware`);
    let terminal: Next;
    let worker: Registration['worker'];
    if (isWorkerHandlerRef(handler)) {
      if (this.pool === undefined) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `${name}: inWorker() handlers need a WorkerPool in the bus options`,
          { handler: name },
        );
      }
      worker = { moduleId: this.pool.registerModule(handler.moduleUrl), exportName: handler.exportName };
      terminal = this.workerTerminal(name, this.pool, worker);
    } else if (isWorkerHandler(handler)) {
      if (handler.name !== name) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `${name}: this handle() value handles '${handler.name}'`,
          { handler: name },
        );
      }
      terminal = this.inlineTerminal(name, handler.fn as HandlerFn<Definition>);
    } else if (typeof handler === 'function') {
      terminal = this.inlineTerminal(name, handler as HandlerFn<Definition>);
    } else {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `${name}: the handler must be a function, inWorker() or handle()`,
        { handler: name },
      );
    }
    const chain = compose([...this.busMiddleware, ...own], terminal);
    this.handlers.set(name, { definition, chain, worker, broken: undefined });
  }

  /**
   * Executes a message through its middleware and handler. By definition, input and result are typed; by
   * name (for dynamic callers), they are `unknown`.
   * @throws CqrsError (as a rejection) `HANDLER_NOT_FOUND`, `CLOSED`, `ABORTED`, `HANDLER_FAILED`,
   * `WORKER_CRASHED`, `NOT_CLONEABLE`, `OVERLOADED`, `INVALID_REGISTRATION`, and whatever middleware adds.
   */
  execute<D extends Definition<K>>(
    definition: D,
    input: InputOf<D>,
    options?: ExecuteOptions,
  ): Promise<ResultOf<D>>;
  execute(name: string, input: unknown, options?: ExecuteOptions): Promise<unknown>;
  execute(target: Definition | string, input: unknown, options?: ExecuteOptions): Promise<unknown> {
    if (this.state !== OPEN) {
      return Promise.reject(new CqrsError('CLOSED', `${targetName(target)}: the bus is closed`));
    }
    if (typeof target === 'object' && target !== null && target.kind !== this.kind) {
      return Promise.reject(
        new CqrsError(
          'HANDLER_NOT_FOUND',
          `${target.name} is a ${target.kind}; execute it on a ${target.kind} bus`,
          {
            handler: target.name,
          },
        ),
      );
    }
    return this.dispatch(
      targetName(target),
      input,
      options?.metadata ?? noMetadata,
      options?.signal,
      undefined,
    );
  }

  /** A nested call from a handler; accepted while the bus drains, since its caller is one of the calls it waits for. @internal */
  executeNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (this.state === CLOSED) return Promise.reject(new CqrsError('CLOSED', `${name}: the bus is closed`));
    return this.dispatch(name, input, metadata, signal, originThread);
  }

  private dispatch(
    name: string,
    input: unknown,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    originThread: number | undefined,
  ): Promise<unknown> {
    const registration = this.handlers.get(name);
    if (registration === undefined) {
      return Promise.reject(
        new CqrsError('HANDLER_NOT_FOUND', `no ${this.kind} handler for '${name}'`, { handler: name }),
      );
    }
    const call: Call =
      originThread === undefined
        ? { name, kind: this.kind, input, metadata, signal, definition: registration.definition }
        : {
            name,
            kind: this.kind,
            input,
            metadata,
            signal,
            definition: registration.definition,
            originThread,
          };
    let pending: Promise<unknown>;
    try {
      pending = registration.chain(call);
    } catch (err) {
      // A middleware that throws instead of rejecting must not escape as a synchronous throw.
      pending = Promise.reject(err);
    }
    this.inFlight++;
    const done = (): void => {
      if (--this.inFlight === 0) this.drained?.();
    };
    pending.then(done, done);
    return pending;
  }

  private inlineTerminal(name: string, fn: HandlerFn<Definition>): Next {
    const directory = this.directory;
    return (call) => {
      // As the pool does for worker handlers: a call whose caller already gave up must not run (a command
      // would change state while its caller was told ABORTED).
      if (call.signal?.aborted === true) return Promise.reject(abortError(call.signal, name));
      let result: unknown;
      try {
        result = fn(call.input, new InlineContext(call, directory));
      } catch (err) {
        return Promise.reject(handlerFailed(name, err));
      }
      const settled = Promise.resolve(result).then(undefined, (err: unknown) => {
        throw handlerFailed(name, err);
      });
      return call.signal === undefined ? settled : raceAbort(settled, call.signal, name);
    };
  }

  private workerTerminal(name: string, pool: WorkerPool, worker: NonNullable<Registration['worker']>): Next {
    return (call) => {
      const broken = this.handlers.get(name)?.broken;
      if (broken !== undefined) return Promise.reject(broken);
      return pool.run({
        moduleId: worker.moduleId,
        exportName: worker.exportName,
        name,
        input: call.input,
        metadata: call.metadata,
        signal: call.signal,
        cancelGraceMs: call.cancelGraceMs,
        originThread: call.originThread,
      });
    };
  }

  /**
   * Loads every worker handler in the pool and checks its export, so a bad module or export is found before
   * traffic. Resolves when all load.
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` naming every handler that cannot be loaded; calls
   * to those fail with the same error.
   */
  async ready(): Promise<void> {
    const pool = this.pool;
    if (pool === undefined) return;
    const failures: string[] = [];
    const causes: unknown[] = [];
    await Promise.all(
      [...this.handlers].map(async ([name, registration]) => {
        if (registration.worker === undefined) return;
        try {
          await pool.probe(registration.worker.moduleId, registration.worker.exportName, name);
          registration.broken = undefined;
        } catch (err) {
          registration.broken = err as CqrsError;
          failures.push((err as Error).message);
          causes.push(err);
        }
      }),
    );
    if (failures.length > 0) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `cannot load ${failures.length} worker handler(s): ${failures.join('; ')}`,
        {
          cause: causes.length === 1 ? causes[0] : new AggregateError(causes),
        },
      );
    }
  }

  /** Refuses new calls with `CLOSED`, waits until every call in flight has settled. Idempotent. Does not close the pool. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = CLOSING;
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.state = CLOSED;
      this.directory.detach(this);
    })();
    return this.closing;
  }

  /** Calls accepted and not yet settled. */
  get pending(): number {
    return this.inFlight;
  }

  protected registeredNames(): string[] {
    return [...this.handlers.keys()];
  }
}

function targetName(target: Definition | string): string {
  return typeof target === 'string' ? target : String((target as Definition | null)?.name);
}

function handlerFailed(name: string, err: unknown): CqrsError {
  const detail = err instanceof Error ? err.message : String(err);
  return new CqrsError('HANDLER_FAILED', `${name} failed: ${detail}`, { cause: err, handler: name });
}

function checkDefinition(definition: Definition, kind: MessageKind): string {
  const what = kind === 'command' ? 'defineCommand' : 'defineQuery';
  if (
    typeof definition !== 'object' ||
    definition === null ||
    typeof definition.name !== 'string' ||
    definition.name === ''
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `registerHandler: the definition must come from ${what}() with a non-empty name`,
    );
  }
  if (definition.kind !== kind) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${definition.name} is a ${definition.kind}; register it on a ${definition.kind} bus`,
      {
        handler: definition.name,
      },
    );
  }
  return definition.name;
}

function checkMiddleware(list: readonly Middleware[], where: string): readonly Middleware[] {
  if (!Array.isArray(list) || list.some((m) => typeof m !== 'function')) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where} must be an array of (next) => (call) => Promise functions`,
    );
  }
  return [...list];
}
