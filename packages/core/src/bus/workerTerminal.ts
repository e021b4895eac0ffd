import type { CqrsError } from '../errors/CqrsError.js';
import type { Next } from '../middleware/Middleware.js';
import type { WorkerPool } from '../pool/WorkerPool.js';

/** Where a worker handler lives: its module's index in the pool's module table, and its export. */
export interface WorkerRoute {
  readonly moduleId: number;
  readonly exportName: string;
}

/** A worker handler's route, with the message it handles and, for an event subscriber, its name. */
export interface WorkerTarget extends WorkerRoute {
  /** The name the thread checks the export against (`handle(def, fn)` handles `def.name`). */
  readonly message: string;
  readonly subscriber: string | undefined;
}

/**
 * The end of a worker handler's chain: hands the call to the pool and counts each attempt the thread did not
 * count itself (aborted, overloaded, crashed). `brokenBy` tells whether `ready()` found the export broken.
 * `settled`: as for `inlineTerminal`, given when the chain has no middleware: this terminal then owns the
 * whole call (recording, in flight, telling the bus it settled). A keyed call (`call.order`) waits here for
 * its turn and holds its key until the pool is done with the handler.
 * @internal
 */
export function workerTerminal(
  name: string,
  pool: WorkerPool,
  worker: WorkerTarget,
  metricsSlot: number,
  brokenBy: () => CqrsError | undefined,
  settled: (() => void) | undefined,
): Next {
  const region = pool.metrics;
  const ownsCall = settled !== undefined;
  return (call) => {
    // As for inline handlers: each attempt is counted once, by the thread that finished it or here when
    // none did (aborted, overloaded, crashed), under a ticket of its own; the layer's pass is claimed.
    let recorded = ownsCall && metricsSlot >= 0;
    // A call this terminal owns whole is timed here, its caller's wait for it from now to `end` (dispatch
    // comes straight here): no continuation of the dispatcher's own, and the reading doubles as the start of
    // its queue wait when it goes to the pool at once.
    const calledAt = recorded ? performance.now() : -1;
    // Ends an attempt this terminal owns the recording of (`recorded`), or the whole call (`ownsCall`).
    // `failure`: the error of a failed attempt. Its code is counted here even when the thread counted the
    // failure itself: only the main thread sees every failure's error.
    const end = (failure: unknown, failed: boolean, counted: boolean): void => {
      if (recorded && !counted) region.recordCount(metricsSlot, failed);
      if (recorded && failed) region.recordFailureCode(metricsSlot, failure);
      if (ownsCall) {
        if (recorded) {
          region.recordCallDuration(metricsSlot, (performance.now() - calledAt) * 1000);
          region.decrementInFlight(metricsSlot);
        }
        // A keyed call: its place goes to the next call once the pool is done with its handler too.
        call.order?.settle();
        (settled as () => void)();
      }
    };
    if (recorded) region.incrementInFlight(metricsSlot);
    else if (call.ticket !== undefined) {
      call.ticket.claimed = true;
      recorded = true;
    }
    const broken = brokenBy();
    if (broken !== undefined) {
      end(broken, true, false);
      return Promise.reject(broken);
    }
    const run = (queuedAt: number): Promise<unknown> => {
      const order = call.order;
      order?.begin();
      const ticket = recorded ? { claimed: false, settledBy: undefined } : undefined;
      return pool.run({
        metricsSlot: ticket === undefined ? -1 : metricsSlot,
        ticket,
        moduleId: worker.moduleId,
        exportName: worker.exportName,
        name: worker.message,
        subscriber: worker.subscriber,
        kind: call.kind,
        input: call.input,
        metadata: call.metadata,
        // Not `call.signal` under a timeout: reading it would make an AbortSignal (see CancelToken.ts).
        signal: call.cancel === undefined ? call.signal : undefined,
        cancel: call.cancel,
        cancelGraceMs: call.cancelGraceMs,
        originThread: call.originThread,
        depth: call.depth,
        // The key is held until the thread is done, also past a timeout (a handler in its grace period).
        done: order === undefined ? undefined : () => order.end(),
        // The attempt ends as the pool decides its outcome: no continuation of ours on its promise.
        settling:
          ticket === undefined && !ownsCall
            ? undefined
            : (failure, failed) => end(failure, failed, ticket?.claimed === true),
        queuedAt,
      });
    };
    // Per-key order: a keyed call runs at its turn (KeyOrder.ts); until then it waits here, after the
    // middleware, so a timeout or an abort ends the wait.
    const turn = call.order?.turn(call, name);
    if (turn === undefined) return run(calledAt);
    return turn.then(
      () => run(-1),
      (err: unknown) => {
        end(err, true, false);
        throw err;
      },
    );
  };
}
