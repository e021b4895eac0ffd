import type { QueryStream } from '../bus/QueryStream.js';
import { CqrsError } from '../errors/CqrsError.js';
import { serializeError } from '../errors/serialize.js';
import type { StreamPull } from './protocol.js';
import { exceedsDepth } from './valueDepth.js';

interface Opened {
  readonly stream: QueryStream;
  /** The stream's signal: aborted when the thread's own signal aborts its read. */
  readonly controller: AbortController;
  readonly thread: number;
  readonly name: string;
}

/**
 * The main thread's end of the streams pool threads read (`ctx.queries.stream` in a worker handler): each is
 * an ordinary stream on the main thread's query bus, its items pulled by the thread in chunks of what is
 * buffered (at most `max`, at least one), over comlink. Items handed to a pull count as taken, so the
 * producer may be one pulled chunk further ahead than `highWaterMark` while the thread reads it. A thread
 * that exits leaves its streams stopped, not running on for nobody.
 * @internal
 */
export class NestedStreams {
  private readonly opened = new Map<number, Opened>();
  private nextId = 1;

  /** @param maxDepth the deepest value the threads can decode (the pool's `maxDepth`). */
  constructor(private readonly maxDepth: number) {}

  /** Keeps `stream` under a new id for thread `thread`; `controller` aborts its signal. */
  add(stream: QueryStream, controller: AbortController, thread: number, name: string): number {
    const id = this.nextId++;
    this.opened.set(id, { stream, controller, thread, name });
    return id;
  }

  async pull(id: number, max: number): Promise<StreamPull> {
    const opened = this.opened.get(id);
    if (opened === undefined) return { d: true };
    let items: readonly unknown[] | undefined;
    try {
      items = await opened.stream.takeSome(Math.max(1, max));
    } catch (err) {
      this.opened.delete(id);
      return this.failure(err, opened.name);
    }
    if (items === undefined) {
      this.opened.delete(id);
      return { d: true };
    }
    // Items of an inline generator were never checked: one the thread could not decode would be dropped on
    // its way, and the pull never answered. The chunk adds one level.
    if (exceedsDepth(items, this.maxDepth + 1)) {
      this.opened.delete(id);
      void opened.stream.return();
      return this.failure(
        new CqrsError(
          'NOT_CLONEABLE',
          `${opened.name}: an item is nested deeper than ${this.maxDepth} levels (WorkerPool maxDepth) and cannot cross to the thread`,
          { handler: opened.name },
        ),
        opened.name,
      );
    }
    return { v: items };
  }

  async close(id: number, aborted: boolean): Promise<void> {
    const opened = this.opened.get(id);
    if (opened === undefined) return;
    this.opened.delete(id);
    if (aborted) opened.controller.abort();
    await opened.stream.return();
  }

  /** Thread `thread` is gone: its streams are stopped. */
  threadGone(thread: number): void {
    for (const [id, opened] of [...this.opened]) {
      if (opened.thread !== thread) continue;
      this.opened.delete(id);
      void opened.stream.return();
    }
  }

  private failure(err: unknown, name: string): StreamPull {
    const e = serializeError(err);
    if (!exceedsDepth(e, this.maxDepth)) return { e };
    return {
      e: serializeError(
        new CqrsError(
          'NOT_CLONEABLE',
          `${name}: the error is nested deeper than ${this.maxDepth} levels (WorkerPool maxDepth) and cannot cross to the thread`,
          { handler: name },
        ),
      ),
    };
  }
}
