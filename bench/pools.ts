/**
 * The pools the pooled benches compare, each behind one shape: start it with a thread count, `run` one task,
 * `close` it. A new row (say a future `WorkerPool` option) is one more entry in `pooledContenders()`.
 */
import { fileURLToPath } from 'node:url';
import { CommandBus, inWorker, WorkerPool, type WorkerPoolOptions } from '@cqrs-pool/core';
import { Piscina } from 'piscina';
import { FixedThreadPool } from 'poolifier';
import Tinypool from 'tinypool';
import workerpool from 'workerpool';
import { Echo } from './handlers/echo.js';

export interface RunningPool {
  run(input: { id: number; name: string }): Promise<unknown>;
  close(): Promise<void>;
}

export interface Contender {
  name: string;
  /** Ours, so the targets can find it. */
  ours?: boolean;
  start(threads: number): Promise<RunningPool>;
}

const handlers = new URL('./handlers/', import.meta.url);
const echoPlain = fileURLToPath(new URL('echoPlain.js', handlers));

/** Our full stack: `WorkerPool` + `CommandBus` with default options (metrics on), the echo handler `inWorker`. */
export function ours(name: string, options: WorkerPoolOptions = {}): Contender {
  return {
    name,
    ours: true,
    async start(threads) {
      const pool = new WorkerPool({ ...options, threads });
      const bus = new CommandBus({ pool });
      bus.registerHandler(Echo, inWorker(new URL('echo.js', handlers), 'echo'));
      await bus.ready();
      return {
        run: (input) => bus.execute(Echo, input),
        async close() {
          await bus.close();
          await pool.close();
        },
      };
    },
  };
}

export function piscina(
  name: string,
  options: { stricterFIFO?: boolean; atomics?: 'sync' | 'async' | 'disabled' } = {},
): Contender {
  return {
    name,
    async start(threads) {
      const pool = new Piscina({ filename: echoPlain, minThreads: threads, maxThreads: threads, ...options });
      return { run: (input) => pool.run(input), close: () => pool.destroy() };
    },
  };
}

/**
 * poolifier 5.3's `destroy()` sometimes never settles after its threads are gone (seen here on about one
 * close in three, from the second pool a process makes): with nothing left to keep the event loop alive,
 * Node then exits mid-run (code 13). A timer bounds the wait; the threads are already gone by then.
 */
function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

export const tinypool: Contender = {
  name: 'tinypool',
  async start(threads) {
    const pool = new Tinypool({ filename: echoPlain, minThreads: threads, maxThreads: threads });
    return { run: (input) => pool.run(input), close: () => pool.destroy() };
  },
};

export const poolifier: Contender = {
  name: 'poolifier (FixedThreadPool)',
  async start(threads) {
    const pool = new FixedThreadPool(threads, fileURLToPath(new URL('echoPoolifier.js', handlers)));
    return { run: (input) => pool.execute(input), close: () => settleWithin(pool.destroy(), 2000) };
  },
};

export const workerpoolContender: Contender = {
  name: 'workerpool',
  async start(threads) {
    const pool = workerpool.pool(fileURLToPath(new URL('echoWorkerpool.js', handlers)), {
      minWorkers: threads,
      maxWorkers: threads,
      workerType: 'thread',
    });
    return {
      // workerpool's promise is its own thenable; wrapped so every row awaits a native promise.
      run: (input) => Promise.resolve(pool.exec('echo', [input])),
      async close() {
        await pool.terminate();
      },
    };
  },
};

/** The rows of the pooled dispatch bench, ours first, raw piscina next (the targets' references). */
export function pooledContenders(): Contender[] {
  return [
    ours('cqrs-pool (WorkerPool + CommandBus, defaults)'),
    ours("cqrs-pool (idleWait: 'loop')", { idleWait: 'loop' }),
    ours('cqrs-pool (batching: false)', { batching: false }),
    piscina('piscina.run (defaults)'),
    piscina('piscina.run (stricterFIFO)', { stricterFIFO: true }),
    // The options WorkerPool gives piscina with idleWait: 'loop': what is left between that row and this one
    // is our own layer.
    piscina('piscina.run (stricterFIFO, atomics async)', { stricterFIFO: true, atomics: 'async' }),
    tinypool,
    poolifier,
    workerpoolContender,
  ];
}
