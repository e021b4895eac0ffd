import { isCqrsError } from '../errors/CqrsError.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import { abortError } from '../util/abortError.js';
import type { StreamProducer, StreamSink } from './StreamSink.js';

const NEW = 0;
const RUNNING = 1;
/** The call settled; buffered items (and then its error) are still to be read. */
const ENDED = 2;
/** Iteration is over: the consumer read the end, or stopped. */
const DONE = 3;

interface Waiter {
  resolve(result: IteratorResult<unknown> | readonly unknown[] | undefined): void;
  reject(err: unknown): void;
  /** Wants every buffered item at once (up to `max`), not one. */
  readonly max: number;
}

const doneResult: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

/**
 * What `queries.stream()` returns: an `AsyncIterable` of the stream's items, and its own iterator (one pass).
 * The call starts at the first `next()` (the first turn of a `for await`), not before: a stream nobody reads
 * takes no thread.
 *
 * Items wait here, in the chunks they arrived in, until the consumer takes them; each item taken is a credit
 * handed back to the producer, which may be at most `highWaterMark` items ahead — so this buffer never holds
 * more than that, however slow the consumer. Credits go back in batches (a quarter of the high-water mark,
 * or whatever is owed when the buffer runs dry), so a fast stream pays one wake-up of its producer per batch,
 * not per item.
 *
 * An error the call ends with is thrown by `next()` after the items delivered before it — except the
 * caller's own abort (`ABORTED` from the signal), which is thrown at once: the caller asked to stop.
 * `return()` (what `break` calls) stops the producer and resolves once it has stopped (its `finally` ran);
 * the call then counts as a success.
 */
export class QueryStream<T = unknown> implements AsyncIterableIterator<T>, StreamSink {
  /** Items that reached this buffer so far, over every attempt of the call. */
  delivered = 0;
  /** The consumer stopped reading (`return()` during the call). */
  stopped = false;
  private state = NEW;
  /** Arrived chunks, oldest first, from `head`; `at` is the next item's index in the head chunk. */
  private chunks: (readonly unknown[] | undefined)[] = [];
  private head = 0;
  private at = 0;
  private buffered = 0;
  /** The tail chunk when `pushOne` made it: single items are appended to it, not given an array each. */
  private own: unknown[] | undefined;
  private waiters: Waiter[] = [];
  private producer: StreamProducer | undefined;
  /** Items taken and not yet handed back to the producer as credits. */
  private owed = 0;
  private readonly grantStep: number;
  private failed = false;
  private failure: unknown;
  private ending: Promise<void> | undefined;
  private region: MetricsRegion | undefined;
  private slot = -1;
  private startedAt = 0;
  private firstSeen = false;

  /**
   * @param begin starts the call with this buffer as its sink; settles when the call does.
   * @param signal the caller's signal: an abort from it drops what is buffered.
   * @internal
   */
  constructor(
    private readonly begin: (sink: QueryStream<T>) => Promise<unknown>,
    readonly highWaterMark: number,
    private readonly signal: AbortSignal | undefined,
    /** The query's name, for errors. */
    private readonly name = 'stream',
  ) {
    this.grantStep = Math.max(1, Math.floor(highWaterMark / 4));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The next item, or `done` after the last. Starts the call on the first call.
   * @throws CqrsError (as a rejection) what the call ended with: `HANDLER_FAILED` (its `cause` rebuilt),
   * `WORKER_CRASHED`, `NOT_CLONEABLE`, `TIMEOUT`, `ABORTED`, `CLOSED`, `HANDLER_NOT_FOUND`,
   * `INVALID_REGISTRATION`, `VALIDATION`, and whatever middleware adds.
   */
  next(): Promise<IteratorResult<T>> {
    if (this.buffered > 0) {
      // The caller's abort: nothing more is read; its ABORTED is on its way from the chain.
      if (this.signal?.aborted === true && this.state !== NEW) this.abortRead(this.signal);
      else return Promise.resolve({ value: this.take() as T, done: false });
    }
    return this.wait(0) as Promise<IteratorResult<T>>;
  }

  /**
   * Stops reading: the producer is told to stop (its generator's `finally` runs, its thread is freed) and
   * whatever is buffered is dropped. Resolves once the call has ended. What `break` in a `for await` calls.
   */
  return(): Promise<IteratorResult<T>> {
    const was = this.state;
    this.state = DONE;
    this.dropBuffer();
    this.flushWaiters();
    if (was !== RUNNING) return Promise.resolve(doneResult);
    this.stopped = true;
    const producer = this.producer;
    // Not connected yet (in middleware, or waiting for its turn): the terminal sees `stopped` when the call
    // gets there, and ends it at once. Nothing runs that the caller must wait for.
    if (producer === undefined) return Promise.resolve(doneResult);
    producer.stop();
    return (this.ending as Promise<void>).then(() => doneResult);
  }

  /**
   * Up to `max` buffered items at once (at least one), or undefined after the last: for relays that forward
   * items in chunks (a pool thread's nested stream, a remote caller). Starts the call on the first call.
   * @internal
   */
  takeSome(max: number): Promise<readonly unknown[] | undefined> {
    if (this.buffered > 0) return Promise.resolve(this.takeMany(max));
    return this.wait(max) as Promise<readonly unknown[] | undefined>;
  }

  /** @internal */
  push(items: readonly unknown[]): void {
    if (this.state !== RUNNING || this.stopped || items.length === 0) return;
    this.chunks.push(items);
    this.own = undefined;
    this.buffered += items.length;
    this.count(items.length);
    if (this.waiters.length > 0) this.serve();
  }

  /** @internal */
  pushOne(item: unknown): void {
    if (this.state !== RUNNING || this.stopped) return;
    const own = this.own;
    if (own === undefined) {
      const chunk = [item];
      this.own = chunk;
      this.chunks.push(chunk);
    } else own.push(item);
    this.buffered++;
    this.count(1);
    if (this.waiters.length > 0) this.serve();
  }

  /** @internal */
  connect(producer: StreamProducer): number {
    this.producer = producer;
    this.owed = 0;
    return Math.max(0, this.highWaterMark - this.buffered);
  }

  /** @internal */
  meter(region: MetricsRegion, slot: number): void {
    this.region = region;
    this.slot = slot;
  }

  private count(n: number): void {
    this.delivered += n;
    const region = this.region;
    if (region === undefined) return;
    region.recordStreamItems(this.slot, n);
    if (!this.firstSeen) {
      this.firstSeen = true;
      region.recordFirstItem(this.slot, (performance.now() - this.startedAt) * 1000);
    }
  }

  private start(): void {
    this.state = RUNNING;
    this.startedAt = performance.now();
    let pending: Promise<unknown>;
    try {
      pending = this.begin(this);
    } catch (err) {
      pending = Promise.reject(err);
    }
    this.ending = pending.then(
      () => this.settle(false, undefined),
      (err: unknown) => this.settle(true, err),
    );
  }

  /** The call settled: what is buffered is still read, then the end (or the error). */
  private settle(failed: boolean, err: unknown): void {
    this.producer = undefined;
    if (this.state !== RUNNING) return;
    this.state = ENDED;
    if (failed) {
      this.failed = true;
      this.failure = err;
      // The caller's own abort: it asked to stop, so nothing more is read.
      if (this.signal?.aborted === true && isCqrsError(err, 'ABORTED')) this.dropBuffer();
    }
    this.serve();
  }

  private wait(max: number): Promise<unknown> {
    if (this.state === NEW) this.start();
    if (this.buffered > 0) {
      return Promise.resolve(max > 0 ? this.takeMany(max) : { value: this.take(), done: false });
    }
    if (this.state === ENDED) return this.end(max);
    if (this.state === DONE) return Promise.resolve(max > 0 ? undefined : doneResult);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject, max }));
  }

  /** Hands buffered items to waiting readers, and the end when the call ended and the buffer is empty. */
  private serve(): void {
    while (this.waiters.length > 0) {
      if (this.buffered > 0) {
        const waiter = this.waiters.shift() as Waiter;
        waiter.resolve(waiter.max > 0 ? this.takeMany(waiter.max) : { value: this.take(), done: false });
      } else if (this.state === ENDED || this.state === DONE) {
        // The first reader gets the end (or the error); any other waiting reader, `done`.
        const waiter = this.waiters.shift() as Waiter;
        this.end(waiter.max).then(
          (result) => waiter.resolve(result as IteratorResult<unknown> | undefined),
          waiter.reject,
        );
      } else return;
    }
  }

  /** The end of the iteration: the call's error once, then `done`. */
  private end(max: number): Promise<unknown> {
    const first = this.state === ENDED;
    this.state = DONE;
    if (first && this.failed) {
      this.failed = false;
      const err = this.failure;
      this.failure = undefined;
      return Promise.reject(err);
    }
    return Promise.resolve(max > 0 ? undefined : doneResult);
  }

  private take(): unknown {
    const chunk = this.chunks[this.head] as readonly unknown[];
    const value = chunk[this.at++];
    if (this.at === chunk.length) this.dropHead(chunk);
    this.buffered--;
    if (++this.owed >= this.grantStep || this.buffered === 0) this.grant();
    return value;
  }

  private takeMany(max: number): readonly unknown[] {
    const chunk = this.chunks[this.head] as readonly unknown[];
    let items: readonly unknown[];
    if (this.at === 0 && chunk.length <= max && chunk !== this.own) {
      items = chunk;
      this.dropHead(chunk);
    } else {
      const end = Math.min(chunk.length, this.at + max);
      items = chunk.slice(this.at, end);
      this.at = end;
      if (end === chunk.length) this.dropHead(chunk);
    }
    this.buffered -= items.length;
    this.owed += items.length;
    if (this.owed >= this.grantStep || this.buffered === 0) this.grant();
    return items;
  }

  private dropHead(chunk: readonly unknown[]): void {
    this.chunks[this.head++] = undefined;
    this.at = 0;
    if (chunk === this.own) this.own = undefined;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }

  private grant(): void {
    const n = this.owed;
    this.owed = 0;
    this.producer?.grant(n);
  }

  /** The caller aborted with items still buffered: they are dropped, and the iteration fails. */
  private abortRead(signal: AbortSignal): void {
    this.dropBuffer();
    // A call that ended well before the abort fails the read all the same: the caller asked to stop.
    if (this.state === ENDED && !this.failed) {
      this.failed = true;
      this.failure = abortError(signal, this.name);
    }
  }

  private dropBuffer(): void {
    this.chunks = [];
    this.head = 0;
    this.at = 0;
    this.buffered = 0;
    this.own = undefined;
  }

  /** Readers waiting when iteration ended early (`return()`): they get the end. */
  private flushWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve(waiter.max > 0 ? undefined : doneResult);
  }
}
