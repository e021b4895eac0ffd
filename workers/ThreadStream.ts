import type { Remote } from 'comlink/dist/esm/comlink.mjs';
import { CqrsError, isCqrsError } from '../packages/core/src/errors/CqrsError.js';
import { deserializeError } from '../packages/core/src/errors/serialize.js';
import type { NestedDispatchApi, StreamPull } from '../packages/core/src/pool/protocol.js';
import { abortError, raceAbort } from '../packages/core/src/util/abortError.js';

const doneResult: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * `ctx.queries.stream` in a pool thread: the stream runs on the main thread's query bus (NestedStreams.ts),
 * and this iterator pulls its items over comlink, a chunk of whatever is buffered there per round trip. It
 * opens the stream at the first `next()`, as the main thread's streams start. `return()` stops it there; the
 * signal aborts it there and fails this iterator with `ABORTED` at once. A stream still open when its
 * handler ends is stopped then (see ThreadContext.finish).
 * @internal
 */
export class ThreadStream implements AsyncIterableIterator<unknown> {
  private id: Promise<number> | undefined;
  private items: readonly unknown[] = [];
  private at = 0;
  private finished = false;
  /** Pulls run one after another, however `next()` is called. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly mainBuses: Remote<NestedDispatchApi>,
    private readonly open: () => Promise<number>,
    private readonly name: string,
    private readonly max: number,
    private readonly signal: AbortSignal | undefined,
    /** The streams of this handler still open: this one leaves it when it ends. */
    private readonly openStreams: Set<ThreadStream>,
  ) {
    openStreams.add(this);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.at < this.items.length) {
      const value = this.items[this.at++];
      return Promise.resolve({ value, done: false });
    }
    const step = this.queue.then(() => this.pull());
    this.queue = step.then(noop, noop);
    return step;
  }

  /** Stops the stream on the main thread; resolves once it ended there. Never rejects. */
  async return(): Promise<IteratorResult<unknown>> {
    if (this.finished) return doneResult;
    this.end();
    const id = this.id;
    try {
      if (id !== undefined) await this.mainBuses.closeStream(await id, false);
    } catch {
      // Never opened (its refusal was the reader's to see), or the main thread is gone: nothing to stop.
    }
    return doneResult;
  }

  private async pull(): Promise<IteratorResult<unknown>> {
    if (this.at < this.items.length) return { value: this.items[this.at++], done: false };
    if (this.finished) return doneResult;
    const signal = this.signal;
    if (signal?.aborted === true) return this.aborted(signal);
    let pull: StreamPull;
    try {
      this.id ??= this.openStream();
      const pending = this.id.then((id): Promise<StreamPull> => this.mainBuses.pullStream(id, this.max));
      pull = signal === undefined ? await pending : await raceAbort(pending, signal, this.name);
    } catch (err) {
      // Read again: it may have aborted while the pull was on its way (`raceAbort` rejected).
      const late = this.signal;
      if (late?.aborted === true) return this.aborted(late);
      this.end();
      if (this.id !== undefined) this.close(this.id, false);
      if (isCqrsError(err)) throw err;
      // comlink could not post the chunk: an item of an inline generator structured clone refuses.
      const e = err as { name?: unknown; message?: unknown } | null;
      if (e?.name === 'DataCloneError' || e?.message === 'Unserializable return value') {
        throw new CqrsError(
          'NOT_CLONEABLE',
          `${this.name}: an item cannot cross to the thread: ${String(e.message)}`,
          {
            cause: err,
            handler: this.name,
          },
        );
      }
      throw err;
    }
    if ('v' in pull) {
      this.items = pull.v;
      this.at = 1;
      return { value: pull.v[0], done: false };
    }
    this.end();
    if ('e' in pull) throw deserializeError(pull.e);
    return doneResult;
  }

  private async openStream(): Promise<number> {
    const id = await this.open();
    // The signal may have aborted while the stream was being opened: tell the main thread now.
    this.signal?.addEventListener('abort', () => this.close(id, true), { once: true });
    if (this.signal?.aborted === true) this.close(id, true);
    return id;
  }

  /**
   * Stops the stream on the main thread, in the background. A rejection here (the main thread gone) must not
   * go unhandled: in a pool thread that retires the thread.
   */
  private close(id: number | Promise<number>, aborted: boolean): void {
    Promise.resolve(id)
      .then((opened) => this.mainBuses.closeStream(opened, aborted))
      .catch(noop);
  }

  private aborted(signal: AbortSignal): never {
    this.end();
    throw abortError(signal, this.name);
  }

  private end(): void {
    this.finished = true;
    this.items = [];
    this.at = 0;
    this.openStreams.delete(this);
  }
}

function noop(): void {}
