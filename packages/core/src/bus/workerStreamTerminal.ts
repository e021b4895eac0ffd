import type { CqrsError } from '../errors/CqrsError.js';
import type { Next } from '../middleware/Middleware.js';
import type { WorkerPool } from '../pool/WorkerPool.js';
import { notAStreamCall } from './inlineStreamTerminal.js';
import type { WorkerTarget } from './workerTerminal.js';

/**
 * The end of a streaming query's chain whose handler runs in the pool: hands the call and its stream to the
 * pool (StreamRunner.ts) and counts each attempt the thread did not count itself — aborted, crashed, refused,
 * or stopped by its consumer (a success, timed here: the thread's own count lost the race to the stop). A
 * keyed call waits for its turn here and holds its key until the thread is done with the generator.
 * @internal
 */
export function workerStreamTerminal(
  name: string,
  pool: WorkerPool,
  worker: WorkerTarget,
  metricsSlot: number,
  brokenBy: () => CqrsError | undefined,
): Next {
  const region = pool.metrics;
  return (call) => {
    const sink = call.stream;
    if (sink === undefined) return Promise.reject(notAStreamCall(name));
    if (metricsSlot >= 0) sink.meter(region, metricsSlot);
    let recorded = false;
    if (call.ticket !== undefined && metricsSlot >= 0) {
      call.ticket.claimed = true;
      recorded = true;
    }
    /** Ends an attempt: counted here unless its thread counted it (`counted`); a failure's code always. */
    const end = (failure: unknown, startedAt: number, counted: boolean): void => {
      if (!recorded) return;
      const failed = failure !== undefined;
      if (!counted) {
        if (startedAt >= 0) region.recordAttempt(metricsSlot, (performance.now() - startedAt) * 1000, failed);
        else region.recordCount(metricsSlot, failed);
      }
      if (failed) region.recordFailureCode(metricsSlot, failure);
    };
    const broken = brokenBy();
    if (broken !== undefined) {
      end(broken, -1, false);
      return Promise.reject(broken);
    }
    const run = (): Promise<unknown> => {
      // The consumer left before the call got here: nothing to run.
      if (sink.stopped) {
        end(undefined, -1, false);
        return Promise.resolve(undefined);
      }
      const order = call.order;
      order?.begin();
      const ticket = recorded ? { claimed: false, settledBy: undefined } : undefined;
      const startedAt = performance.now();
      const running = pool.runStream(
        {
          metricsSlot: ticket === undefined ? -1 : metricsSlot,
          ticket,
          queuedAt: startedAt,
          moduleId: worker.moduleId,
          exportName: worker.exportName,
          name: worker.message,
          subscriber: undefined,
          kind: call.kind,
          input: call.input,
          metadata: call.metadata,
          // Not `call.signal` under a timeout: reading it would make an AbortSignal (see CancelToken.ts).
          signal: call.cancel === undefined ? call.signal : undefined,
          cancel: call.cancel,
          cancelGraceMs: call.cancelGraceMs,
          originThread: call.originThread,
          depth: call.depth,
          watcher: order,
        },
        sink,
      );
      return running.then(
        () => {
          end(undefined, startedAt, ticket?.claimed === true);
          return undefined;
        },
        (err: unknown) => {
          end(err, -1, ticket?.claimed === true);
          throw err;
        },
      );
    };
    const turn = call.order?.turn(call, name);
    if (turn === undefined) return run();
    return turn.then(run, (err: unknown) => {
      end(err, -1, false);
      throw err;
    });
  };
}
