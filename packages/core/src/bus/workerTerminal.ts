import type { CqrsError } from '../errors/CqrsError.js';
import type { Next } from '../middleware/Middleware.js';
import type { WorkerPool } from '../pool/WorkerPool.js';

/** Where a worker handler lives: its module's index in the pool's module table, and its export. */
export interface WorkerRoute {
  readonly moduleId: number;
  readonly exportName: string;
}

/**
 * The end of a worker handler's chain: hands the call to the pool and counts each attempt the thread did not
 * count itself (aborted, overloaded, crashed). `brokenBy` tells whether `ready()` found the export broken.
 * `ownsCall`: as for `inlineTerminal`, the chain has no middleware and this terminal does the whole recording.
 * @internal
 */
export function workerTerminal(
  name: string,
  pool: WorkerPool,
  worker: WorkerRoute,
  metricsSlot: number,
  brokenBy: () => CqrsError | undefined,
  ownsCall: boolean,
): Next {
  const region = pool.metrics;
  return (call) => {
    // As for inline handlers: each attempt is counted once, by the thread that finished it or here when
    // none did (aborted, overloaded, crashed), under a ticket of its own; the layer's pass is claimed.
    let recorded = ownsCall && metricsSlot >= 0;
    if (recorded) region.incrementInFlight(metricsSlot);
    else if (call.ticket !== undefined) {
      call.ticket.claimed = true;
      recorded = true;
    }
    const broken = brokenBy();
    if (broken !== undefined) {
      if (recorded) {
        region.recordRefusal(metricsSlot);
        if (ownsCall) region.decrementInFlight(metricsSlot);
      }
      return Promise.reject(broken);
    }
    const ticket = recorded ? { claimed: false } : undefined;
    const running = pool.run({
      metricsSlot: ticket === undefined ? -1 : metricsSlot,
      ticket,
      moduleId: worker.moduleId,
      exportName: worker.exportName,
      name,
      input: call.input,
      metadata: call.metadata,
      signal: call.signal,
      cancelGraceMs: call.cancelGraceMs,
      originThread: call.originThread,
    });
    if (ticket === undefined) return running;
    const settle = (failed: boolean): void => {
      if (!ticket.claimed) region.recordCount(metricsSlot, failed);
      if (ownsCall) region.decrementInFlight(metricsSlot);
    };
    return running.then(
      (value) => {
        settle(false);
        return value;
      },
      (err: unknown) => {
        settle(true);
        throw err;
      },
    );
  };
}
