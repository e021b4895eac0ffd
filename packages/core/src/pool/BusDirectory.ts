import { CqrsError } from '../errors/CqrsError.js';
import { serializeError } from '../errors/serialize.js';
import type { BusClient, ExecuteOptions, Metadata } from '../handler/HandlerContext.js';
import type { Definition, MessageKind } from '../messages/Definition.js';
import type { NestedDispatchApi, TaskOutcome } from './protocol.js';

/** What a bus offers to nested callers. @internal */
export interface NestedTarget {
  readonly kind: MessageKind;
  executeNested(
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number | undefined,
    signal?: AbortSignal,
  ): Promise<unknown>;
}

/**
 * The buses that share one pool, one per kind: the targets of `ctx.commands` / `ctx.queries`, for inline
 * handlers directly and for pool threads over comlink. The first bus of each kind attached wins.
 * @internal
 */
export class BusDirectory implements NestedDispatchApi {
  private readonly targets: { command?: NestedTarget; query?: NestedTarget } = {};
  attach(target: NestedTarget): void {
    this.targets[target.kind] ??= target;
  }

  detach(target: NestedTarget): void {
    if (this.targets[target.kind] === target) delete this.targets[target.kind];
  }

  /** Serves a pool thread's nested call; answers plain data, never throws. */
  async dispatch(
    kind: MessageKind,
    name: string,
    input: unknown,
    metadata: Metadata,
    originThread: number,
  ): Promise<TaskOutcome> {
    try {
      return {
        ok: true,
        v: await this.target(kind, name).executeNested(name, input, metadata, originThread),
      };
    } catch (err) {
      return { ok: false, k: 'handler', e: serializeError(err) };
    }
  }

  private target(kind: MessageKind, name: string): NestedTarget {
    const target = this.targets[kind];
    if (target === undefined) {
      throw new CqrsError('HANDLER_NOT_FOUND', `${name}: no ${kind} bus shares this pool`, { handler: name });
    }
    return target;
  }

  /** `ctx.commands` / `ctx.queries` of an inline handler: nested calls inherit the caller's metadata. */
  client<K extends MessageKind>(kind: K, parentMetadata: Metadata): BusClient<K> {
    const execute = (
      target: Definition | string,
      input: unknown,
      options?: ExecuteOptions,
    ): Promise<unknown> => {
      const name = typeof target === 'string' ? target : target.name;
      const metadata =
        options?.metadata === undefined ? parentMetadata : { ...parentMetadata, ...options.metadata };
      try {
        return this.target(kind, name).executeNested(name, input, metadata, undefined, options?.signal);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return { execute } as BusClient<K>;
  }
}
