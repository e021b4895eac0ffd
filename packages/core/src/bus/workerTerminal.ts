import type { CqrsError } from '../errors/CqrsError.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { MessageKind } from '../messages/Definition.js';
import type { Call, CallTicket, Next } from '../middleware/Middleware.js';
import type { PoolTask, WorkerPool } from '../pool/WorkerPool.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import type { CancelToken } from '../util/CancelToken.js';
import type { OrderTicket } from './KeyOrder.js';

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
  const terminal: TerminalOf = { pool, worker, region: pool.metrics, metricsSlot, settled };
  const ownsCall = settled !== undefined;
  return (call) => {
    // As for inline handlers: each attempt is counted once, by the thread that finished it or here when
    // none did (aborted, overloaded, crashed), under a ticket of its own; the layer's pass is claimed.
    let recorded = ownsCall && metricsSlot >= 0;
    // A call this terminal owns whole is timed here, its caller's wait for it from now to its end (dispatch
    // comes straight here): no continuation of the dispatcher's own, and the reading doubles as the start of
    // its queue wait when it goes to the pool at once.
    const calledAt = recorded ? performance.now() : -1;
    if (recorded) terminal.region.incrementInFlight(metricsSlot);
    else if (call.ticket !== undefined) {
      call.ticket.claimed = true;
      recorded = true;
    }
    const broken = brokenBy();
    if (broken !== undefined) {
      endAttempt(terminal, call, recorded, calledAt, broken, true, false);
      return Promise.reject(broken);
    }
    // Per-key order: a keyed call runs at its turn (KeyOrder.ts); until then it waits here, after the
    // middleware, so a timeout or an abort ends the wait.
    const turn = call.order?.turn(call, name);
    if (turn === undefined) return pool.run(new WorkerAttempt(terminal, call, recorded, calledAt, calledAt));
    return turn.then(
      () => pool.run(new WorkerAttempt(terminal, call, recorded, calledAt, -1)),
      (err: unknown) => {
        endAttempt(terminal, call, recorded, calledAt, err, true, false);
        throw err;
      },
    );
  };
}

/** What every attempt of one worker terminal shares. */
interface TerminalOf {
  readonly pool: WorkerPool;
  readonly worker: WorkerTarget;
  readonly region: MetricsRegion;
  readonly metricsSlot: number;
  /** Given when the terminal owns the whole call (see `workerTerminal`). */
  readonly settled: (() => void) | undefined;
}

/**
 * One attempt handed to the pool: the task, and — told by the pool as it decides the outcome (`settling`) —
 * the end of the attempt's recording. One object per attempt, no closures: a pooled call lives for a few ms
 * beside hundreds of others, and each object per call is garbage-collection work.
 */
class WorkerAttempt implements PoolTask {
  readonly metricsSlot: number;
  readonly ticket: CallTicket | undefined;
  readonly moduleId: number;
  readonly exportName: string;
  readonly name: string;
  readonly subscriber: string | undefined;
  readonly kind: MessageKind;
  readonly input: unknown;
  readonly metadata: Metadata;
  readonly signal: AbortSignal | undefined;
  readonly cancel: CancelToken | undefined;
  readonly cancelGraceMs: number | undefined;
  readonly originThread: number | undefined;
  readonly depth: number;
  readonly watcher: OrderTicket | undefined;

  constructor(
    private readonly terminal: TerminalOf,
    private readonly call: Call,
    /** This terminal records the attempt (`end`). */
    private readonly recorded: boolean,
    private readonly calledAt: number,
    readonly queuedAt: number,
  ) {
    const order = call.order;
    order?.begin();
    const worker = terminal.worker;
    this.ticket = recorded ? { claimed: false, settledBy: undefined } : undefined;
    this.metricsSlot = recorded ? terminal.metricsSlot : -1;
    this.moduleId = worker.moduleId;
    this.exportName = worker.exportName;
    this.name = worker.message;
    this.subscriber = worker.subscriber;
    this.kind = call.kind;
    this.input = call.input;
    this.metadata = call.metadata;
    // Not `call.signal` under a timeout: reading it would make an AbortSignal (see CancelToken.ts).
    this.signal = call.cancel === undefined ? call.signal : undefined;
    this.cancel = call.cancel;
    this.cancelGraceMs = call.cancelGraceMs;
    this.originThread = call.originThread;
    this.depth = call.depth;
    // The key is held until the thread is done, also past a timeout (a handler in its grace period).
    this.watcher = order;
  }

  settling(failure: unknown, failed: boolean): void {
    const counted = this.ticket?.claimed === true;
    endAttempt(this.terminal, this.call, this.recorded, this.calledAt, failure, failed, counted);
  }
}

/**
 * Ends an attempt this terminal records (`recorded`), or the whole call (when it owns it). `failure`: the
 * error of a failed attempt. Its code is counted here even when the thread counted the failure itself: only
 * the main thread sees every failure's error.
 */
function endAttempt(
  terminal: TerminalOf,
  call: Call,
  recorded: boolean,
  calledAt: number,
  failure: unknown,
  failed: boolean,
  counted: boolean,
): void {
  const { region, metricsSlot, settled } = terminal;
  if (recorded && !counted) region.recordCount(metricsSlot, failed);
  if (recorded && failed) region.recordFailureCode(metricsSlot, failure);
  if (settled !== undefined) {
    if (recorded) {
      region.recordCallDuration(metricsSlot, (performance.now() - calledAt) * 1000);
      region.decrementInFlight(metricsSlot);
    }
    // A keyed call: its place goes to the next call once the pool is done with its handler too.
    call.order?.settle();
    settled();
  }
}
