import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { CqrsError } from '../errors/CqrsError.js';
import type {
  EarlyOutcomes,
  HelloMessage,
  NestedDispatchApi,
  RunResponse,
  StreamChunk,
  TaskMessage,
  TaskOutcome,
} from './protocol.js';

/** What a thread posts on its run port. */
type RunMessage = RunResponse | EarlyOutcomes | StreamChunk;

/** How long the links of a thread that is gone wait for its run port's 'close' at most (see `gone`). */
const LAST_WORDS_MS = 5000;

interface Link {
  readonly run: MessagePort;
  readonly bus: MessagePort;
  /** Set once the thread is gone: drops the links should the run port's 'close' not come. */
  lastWords: NodeJS.Timeout | undefined;
  readonly pending: Map<number, { resolve: (outcome: TaskOutcome) => void; reject: (err: unknown) => void }>;
}

/**
 * The main thread's end of each pool thread's nested-dispatch ports: it serves the thread's `ctx.commands` /
 * `ctx.queries` (comlink) and runs nested worker handlers back on the thread that awaits them.
 * @internal
 */
export class ThreadLinks {
  private readonly links = new Map<number, Link>();
  private nextId = 0;
  /** Holds on the run ports (see `hold`). */
  private holds = 0;

  constructor(
    private readonly api: NestedDispatchApi,
    /** Outcomes a thread sent while its batch still runs (see TaskScheduler). */
    private readonly onEarly: (early: EarlyOutcomes) => void,
    /** Items of a streaming query running on the thread (see StreamRunner). */
    private readonly onStream: (chunk: StreamChunk) => void = () => {},
    /** The thread's ports closed. */
    private readonly onDrop: (threadId: number) => void = () => {},
  ) {}

  /**
   * A thread said hello: serve its ports. Both are unref'd: an idle pool must not keep the process alive
   * (while a task runs, piscina keeps its thread ref'd; see `hold` for what comes after its answer).
   */
  add(hello: HelloMessage): void {
    const link: Link = { run: hello.run, bus: hello.bus, pending: new Map(), lastWords: undefined };
    this.links.set(hello.threadId, link);
    Comlink.expose(this.api, nodeEndpoint(hello.bus));
    hello.bus.unref();
    hello.run.on('message', (response: RunMessage) => this.receive(link, response));
    if (this.holds === 0) hello.run.unref();
    hello.run.once('close', () => this.drop(hello.threadId));
  }

  /**
   * A message is still due on a run port after piscina has answered the task it belongs to: an early outcome
   * of a batch (TaskScheduler.ts) or a stream's last chunk (StreamRunner.ts). The thread posted it before
   * its answer, but on another port, so it may arrive later; until it has, the run ports keep the process
   * alive. Without this hold, a program whose last awaited call is such a one exits in between with code 13
   * (an unsettled top-level await): piscina unrefs an idle thread, and nothing else is left.
   * Counted: each `hold` is ended by one `release`.
   */
  hold(): void {
    if (this.holds++ === 0) for (const link of this.links.values()) link.run.ref();
  }

  release(): void {
    if (--this.holds === 0) for (const link of this.links.values()) link.run.unref();
  }

  private receive(link: Link, response: RunMessage): void {
    if ('sc' in response) {
      this.onStream(response);
      return;
    }
    if ('early' in response) {
      this.onEarly(response);
      return;
    }
    const waiter = link.pending.get(response.id);
    link.pending.delete(response.id);
    waiter?.resolve(response.outcome);
  }

  /**
   * piscina says thread `threadId` is gone (its workerDestroy) — as soon as it exits, which may be before
   * this thread has read what it posted just before on its run port: the early outcomes of a batch it
   * answered, a stream's last chunk. Dropped now, the port would throw those away and their calls would never
   * settle. They are queued on this end, and the port's 'close' comes after them: the links are dropped
   * then (`add`). Should no 'close' come, they are dropped after {@link LAST_WORDS_MS}.
   */
  gone(threadId: number): void {
    const link = this.links.get(threadId);
    if (link === undefined || link.lastWords !== undefined) return;
    link.lastWords = setTimeout(() => this.drop(threadId), LAST_WORDS_MS);
    link.lastWords.unref();
  }

  /** The thread is gone and its run port read to its end: every nested task it ran fails with `WORKER_CRASHED`. */
  drop(threadId: number): void {
    const link = this.links.get(threadId);
    if (link === undefined) return;
    this.links.delete(threadId);
    if (link.lastWords !== undefined) clearTimeout(link.lastWords);
    for (const waiter of link.pending.values()) {
      waiter.reject(
        new CqrsError('WORKER_CRASHED', `pool thread ${threadId} exited while running a nested call`),
      );
    }
    link.pending.clear();
    link.run.close();
    link.bus.close();
    this.onDrop(threadId);
  }

  /** True while a thread is gone and its run port not yet read to its end (see `gone`). */
  get draining(): boolean {
    for (const link of this.links.values()) if (link.lastWords !== undefined) return true;
    return false;
  }

  /** True while thread `threadId`'s ports are open. */
  has(threadId: number): boolean {
    return this.links.has(threadId);
  }

  /** Runs `task` on thread `threadId`, beside the handler there that awaits it. */
  runOn(threadId: number, task: TaskMessage): Promise<TaskOutcome> {
    const link = this.links.get(threadId);
    if (link === undefined) {
      return Promise.reject(new CqrsError('WORKER_CRASHED', `pool thread ${threadId} is gone`));
    }
    const id = this.nextId++;
    return new Promise<TaskOutcome>((resolve, reject) => {
      link.pending.set(id, { resolve, reject });
      try {
        link.run.postMessage({ id, task });
      } catch (err) {
        link.pending.delete(id);
        reject(err);
      }
    });
  }

  closeAll(): void {
    for (const threadId of [...this.links.keys()]) this.drop(threadId);
  }
}
