import type { CqrsError } from '../errors/CqrsError.js';
import type { HandlerFn } from '../handler/handle.js';
import type { Logger } from '../handler/Logger.js';
import type { Definition } from '../messages/Definition.js';
import type { Call, Next } from '../middleware/Middleware.js';
import type { BusDirectory } from '../pool/BusDirectory.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import { abortErrorFor, raceCallAbort } from '../util/abortError.js';
import { abortReason, canAbort, isAborted, onAbort } from '../util/callAbort.js';
import { handlerFailed } from './handlerFailed.js';
import { InlineContext } from './InlineContext.js';
import type { OrderTicket } from './KeyOrder.js';
import { timesCall } from './latencySampling.js';

/**
 * What {@link inlineTerminal} makes: the terminal, and — when it owns its calls — the same terminal for a
 * caller that has no use for the handler's value (an event's fan-out). @internal
 */
export interface InlineTerminal {
  readonly next: Next;
  /**
   * Runs a call as `next` does, but when the handler answered with a plain value there and then, the call
   * is counted and settled at once and this returns undefined instead of a resolved promise: the fan-out
   * then needs no reaction, promise or microtask for that subscriber. Undefined unless the terminal owns
   * its calls (`settled` given).
   */
  readonly now: ((call: Call) => Promise<unknown> | undefined) | undefined;
}

/**
 * The end of an inline handler's chain: runs the handler on the main thread, turns what it throws into
 * `HANDLER_FAILED`, settles at once when the caller aborts, and counts each attempt in the metrics region.
 *
 * `settled`: given when the chain has no middleware, so nothing can refuse a call between dispatch and
 * here. This terminal then owns the whole call — the metrics recording, in flight included, and telling
 * the bus the call settled — and the dispatcher attaches no continuation of its own: one promise and one
 * ticket less per call on the hottest path.
 * @internal
 */
export function inlineTerminal(
  name: string,
  fn: HandlerFn<Definition>,
  directory: BusDirectory,
  logger: Logger,
  region: MetricsRegion | undefined,
  slot: number,
  settled: (() => void) | undefined,
  subscriber?: string,
): InlineTerminal {
  if (region === undefined) return plainInlineTerminal(name, fn, directory, logger, settled, subscriber);
  const ownsCall = settled !== undefined;
  let calls = 0;
  // Continuations of untimed calls (most, once sampled) need no per-call state: made once here.
  const untimedSuccess = (value: unknown): unknown => {
    countAttempt(region, slot, settled, -1, undefined);
    return value;
  };
  const untimedFailure = (err: unknown): never => {
    const failure = handlerFailed(name, err);
    countAttempt(region, slot, settled, -1, failure);
    throw failure;
  };
  const attempt = (call: Call, now: boolean): Promise<unknown> | undefined => {
    // Per-key order: a keyed call runs at its turn (KeyOrder.ts). Until then it waits here, after the
    // middleware; at its turn — or when it aborts — it comes through again, to run or to be refused here.
    // It holds its key until its handler's own outcome (an inline handler runs on past a timeout), and, when
    // this terminal owns the call, gives its place up as it ends the call.
    const order = call.order;
    if (order !== undefined && !order.holding && !isAborted(call)) return waitTurn(terminal, call, name);
    // This attempt is counted here, once, whatever becomes of it; claiming the metrics layer's pass keeps
    // the layer from counting the call again. A retry inside the layer sends every attempt on one pass, so
    // the pass cannot stand for the attempt (the second attempt would go uncounted).
    let recorder: MetricsRegion | undefined;
    if (ownsCall) {
      recorder = region;
      region.incrementInFlight(slot);
    } else if (call.ticket !== undefined) {
      call.ticket.claimed = true;
      recorder = region;
    }
    // Latency is sampled once a handler has a history (latencySampling.ts); counts stay exact.
    const timed = recorder !== undefined && timesCall(calls++);
    const started = timed ? performance.now() : 0;
    // Only latency of a handler that ran to an outcome is recorded; a refusal or an abort has none.
    const ranFrom = timed ? started : -1;
    // As the pool does for worker handlers: a call whose caller already gave up must not run (a command
    // would change state while its caller was told ABORTED).
    // Through callAbort, not `call.signal`: under a timeout, reading the signal would make one (~3.4 µs).
    if (isAborted(call)) {
      const failure = abortErrorFor(abortReason(call), name);
      countAttempt(recorder, slot, settled, -1, failure, order);
      return Promise.reject(failure);
    }
    order?.begin();
    let result: unknown;
    try {
      result = fn(call.input, new InlineContext(call, directory, logger, subscriber));
    } catch (err) {
      order?.end();
      const failure = handlerFailed(name, err);
      countAttempt(recorder, slot, settled, ranFrom, failure, order);
      return Promise.reject(failure);
    }
    if (!canAbort(call)) {
      // A plain value (no object, so no thenable) is the outcome already: counted now, settled without a
      // reaction of ours — a promise and a microtask less for handlers that answer synchronously.
      if (result === null || (typeof result !== 'object' && typeof result !== 'function')) {
        order?.end();
        countAttempt(recorder, slot, settled, ranFrom, undefined, order);
        return now ? undefined : Promise.resolve(result);
      }
      if (!timed && recorder !== undefined && order === undefined)
        return Promise.resolve(result).then(untimedSuccess, untimedFailure);
      return countWhenSettled(result, name, recorder, slot, settled, ranFrom, order);
    }
    return raceWithAbort(call, result, name, recorder, slot, settled, ranFrom, order);
  };
  const terminal: Next = (call) => attempt(call, false) as Promise<unknown>;
  return { next: terminal, now: ownsCall ? (call) => attempt(call, true) : undefined };
}

/** The same without metrics: nothing to count, so no closure or continuation beyond what the call needs. */
function plainInlineTerminal(
  name: string,
  fn: HandlerFn<Definition>,
  directory: BusDirectory,
  logger: Logger,
  settled: (() => void) | undefined,
  subscriber: string | undefined,
): InlineTerminal {
  const toHandlerFailed = (err: unknown): never => {
    settled?.();
    throw handlerFailed(name, err);
  };
  const passOn =
    settled === undefined
      ? undefined
      : (value: unknown): unknown => {
          settled();
          return value;
        };
  const attempt = (call: Call, now: boolean): Promise<unknown> | undefined => {
    if (call.order !== undefined && !call.order.holding && !isAborted(call)) {
      return waitTurn(terminal, call, name);
    }
    if (isAborted(call)) {
      settled?.();
      return Promise.reject(abortErrorFor(abortReason(call), name));
    }
    let result: unknown;
    try {
      result = runHandler(fn, call, directory, logger, subscriber);
    } catch (err) {
      settled?.();
      return Promise.reject(handlerFailed(name, err));
    }
    if (!canAbort(call)) {
      // As above: a plain value settles the call at once.
      if (result === null || (typeof result !== 'object' && typeof result !== 'function')) {
        settled?.();
        return now ? undefined : Promise.resolve(result);
      }
      return Promise.resolve(result).then(passOn, toHandlerFailed);
    }
    // Nothing is counted, so the plain race is exact enough: the caller gets whichever settles first.
    const raced = raceCallAbort(
      Promise.resolve(result).then(undefined, (err: unknown) => {
        throw handlerFailed(name, err);
      }),
      call,
      name,
    );
    if (settled !== undefined) raced.then(settled, settled);
    return raced;
  };
  const terminal: Next = (call) => attempt(call, false) as Promise<unknown>;
  return { next: terminal, now: settled === undefined ? undefined : (call) => attempt(call, true) };
}

/**
 * Calls the handler. A keyed call holds its key until the handler's own outcome — not the caller's, which a
 * timeout or an abort can end first while an inline handler, which cannot be stopped, runs on.
 */
function runHandler(
  fn: HandlerFn<Definition>,
  call: Call,
  directory: BusDirectory,
  logger: Logger,
  subscriber: string | undefined,
): unknown {
  const order = call.order;
  if (order === undefined) return fn(call.input, new InlineContext(call, directory, logger, subscriber));
  order.begin();
  let result: unknown;
  try {
    result = fn(call.input, new InlineContext(call, directory, logger, subscriber));
  } catch (err) {
    order.end();
    throw err;
  }
  const end = (): void => order.end();
  Promise.resolve(result).then(end, end);
  return result;
}

// The continuations below live outside the terminals' closures on purpose: a closure there capturing the
// call's locals would make V8 allocate a context for them on every call, also for the calls (most) that
// never reach these branches.

/** Counts the attempt when the handler's promise settles, and gives the key up; the caller gets its outcome. */
function countWhenSettled(
  result: unknown,
  name: string,
  recorder: MetricsRegion | undefined,
  slot: number,
  settled: (() => void) | undefined,
  ranFrom: number,
  order: OrderTicket | undefined,
): Promise<unknown> {
  return Promise.resolve(result).then(
    (value) => {
      order?.end();
      countAttempt(recorder, slot, settled, ranFrom, undefined, order);
      return value;
    },
    (err: unknown) => {
      order?.end();
      const failure = handlerFailed(name, err);
      countAttempt(recorder, slot, settled, ranFrom, failure, order);
      throw failure;
    },
  );
}

/**
 * The handler's outcome and the caller's abort race, and whichever is seen first decides both what the
 * caller gets and what is counted. (`raceAbort` over a result already counted as a success could still hand
 * the caller ABORTED, when the abort lands in a microtask between the two.)
 */
function raceWithAbort(
  call: Call,
  result: unknown,
  name: string,
  recorder: MetricsRegion | undefined,
  slot: number,
  settled: (() => void) | undefined,
  ranFrom: number,
  order: OrderTicket | undefined,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let decided = false;
    const aborted = (): void => {
      if (decided) return;
      decided = true;
      const failure = abortErrorFor(abortReason(call), name);
      countAttempt(recorder, slot, settled, -1, failure, order);
      reject(failure);
    };
    // The handler itself may have aborted it.
    let unsubscribe = noop;
    if (isAborted(call)) aborted();
    else unsubscribe = onAbort(call, aborted);
    Promise.resolve(result).then(
      (value) => {
        unsubscribe();
        // The key is held until the handler's own end, also when the abort decided the call first.
        order?.end();
        if (decided) return;
        decided = true;
        countAttempt(recorder, slot, settled, ranFrom, undefined, order);
        resolve(value);
      },
      (err: unknown) => {
        unsubscribe();
        order?.end();
        if (decided) return;
        decided = true;
        const failure = handlerFailed(name, err);
        countAttempt(recorder, slot, settled, ranFrom, failure, order);
        reject(failure);
      },
    );
  });
}

/**
 * Waits for a keyed call's turn, then runs `terminal` for it once more: to run the handler, or — when it
 * aborted while it waited — to refuse it there, counted like any abort.
 */
function waitTurn(terminal: Next, call: Call, name: string): Promise<unknown> {
  const again = (): Promise<unknown> => terminal(call);
  return (call.order as OrderTicket).turn(call, name)?.then(again, again) ?? again();
}

/**
 * Counts one attempt — timed when `startedAt` ≥ 0 (a `performance.now()` reading), else counted only; a
 * failure (`failure` set: the error the caller gets) with its code — and, when the terminal owns the call
 * (`settled` given), ends it: in flight −1 and the bus told; a timed one's duration is then the call's too.
 */
function countAttempt(
  recorder: MetricsRegion | undefined,
  slot: number,
  settled: (() => void) | undefined,
  startedAt: number,
  failure: CqrsError | undefined,
  order?: OrderTicket,
): void {
  if (recorder !== undefined) {
    const failed = failure !== undefined;
    if (startedAt >= 0) {
      const micros = (performance.now() - startedAt) * 1000;
      recorder.recordAttempt(slot, micros, failed);
      // A call this terminal owns whole (no middleware, no key to wait for) lasts, for its caller, as long
      // as its handler ran, give or take the few hundred ns of dispatch: timed from the same clock readings
      // instead of two more (the dispatcher leaves such calls to this terminal).
      if (settled !== undefined && order === undefined) recorder.recordCallDuration(slot, micros);
    } else recorder.recordCount(slot, failed);
    if (failed) recorder.recordFailureCode(slot, failure);
  }
  if (settled !== undefined) {
    recorder?.decrementInFlight(slot);
    // A keyed call this terminal owns settles here: its place goes to the next call once its handler ended.
    order?.settle();
    settled();
  }
}

function noop(): void {}
