import { CqrsError } from '../errors/CqrsError.js';
import type { HandlerFn } from '../handler/handle.js';
import type { Logger } from '../handler/Logger.js';
import type { Definition } from '../messages/Definition.js';
import type { Next } from '../middleware/Middleware.js';
import type { BusDirectory } from '../pool/BusDirectory.js';
import type { MetricsRegion } from '../shared/MetricsRegion.js';
import { abortErrorFor } from '../util/abortError.js';
import { abortReason, isAborted, onAbort } from '../util/callAbort.js';
import { handlerFailed } from './handlerFailed.js';
import { InlineContext } from './InlineContext.js';
import type { StreamProducer } from './StreamSink.js';
import { streamIterator } from './streamIterator.js';

/**
 * The end of an inline streaming query's chain: runs the handler's generator on the main thread and pushes
 * its items into the call's stream, one credit each — with none left, the generator is not resumed until
 * the consumer takes items. The call settles when the generator ends (success), throws (`HANDLER_FAILED`), or
 * the caller aborts (at once; the generator is stopped at its next `yield`, as an inline handler cannot be
 * stopped from outside). A consumer that stops ends the generator through `return()` (its `finally` runs)
 * and the call succeeds. Each call is counted once, its latency the whole stream's.
 * @internal
 */
export function inlineStreamTerminal(
  name: string,
  fn: HandlerFn<Definition>,
  directory: BusDirectory,
  logger: Logger,
  region: MetricsRegion | undefined,
  slot: number,
): Next {
  const terminal: Next = (call) => {
    const sink = call.stream;
    if (sink === undefined) return Promise.reject(notAStreamCall(name));
    // Per-key order: as in the inline terminal, a keyed call waits here for its turn, then comes through again.
    const order = call.order;
    if (order !== undefined && !order.holding && !isAborted(call)) {
      const again = (): Promise<unknown> => terminal(call);
      return order.turn(call, name)?.then(again, again) ?? again();
    }
    if (region !== undefined) sink.meter(region, slot);
    let recorder: MetricsRegion | undefined;
    if (call.ticket !== undefined && region !== undefined) {
      call.ticket.claimed = true;
      recorder = region;
    }
    const count = (startedAt: number, failure: CqrsError | undefined): void => {
      if (recorder === undefined) return;
      const failed = failure !== undefined;
      if (startedAt >= 0) recorder.recordAttempt(slot, (performance.now() - startedAt) * 1000, failed);
      else recorder.recordCount(slot, failed);
      if (failed) recorder.recordFailureCode(slot, failure);
    };
    if (isAborted(call)) {
      const failure = abortErrorFor(abortReason(call), name);
      count(-1, failure);
      return Promise.reject(failure);
    }
    // The consumer left before the call got here: nothing to run.
    if (sink.stopped) {
      count(-1, undefined);
      return Promise.resolve(undefined);
    }
    const startedAt = performance.now();
    order?.begin();
    // The generator's `ctx.signal` aborts when the call aborts and also when the consumer stops, as a pool
    // thread's does: a generator busy awaiting something learns it is no longer wanted. One controller per
    // stream, not per item.
    const stop = new AbortController();
    const unfollow = onAbort(call, () => stop.abort(abortReason(call)));
    if (isAborted(call)) stop.abort(abortReason(call));
    const inner = { ...call, signal: stop.signal, cancel: undefined };
    let iterator: AsyncIterator<unknown>;
    try {
      iterator = streamIterator(fn(call.input, new InlineContext(inner, directory, logger, undefined)));
    } catch (err) {
      unfollow();
      order?.end();
      const failure = handlerFailed(name, err);
      count(startedAt, failure);
      return Promise.reject(failure);
    }
    return new Promise<unknown>((resolve, reject) => {
      let decided = false;
      let stopping = false;
      /** The consumer stopped: whatever the generator ends with now, the call succeeds. */
      let left = false;
      let wake: (() => void) | undefined;
      const producer: StreamProducer = {
        grant(n) {
          credits += n;
          wake?.();
        },
        stop() {
          stopping = true;
          left = true;
          stop.abort(new CqrsError('ABORTED', `${name}: the consumer stopped reading`, { handler: name }));
          wake?.();
        },
      };
      let credits = sink.connect(producer);
      const unsubscribe = onAbort(call, () => {
        stopping = true;
        wake?.();
        if (decided) return;
        decided = true;
        const failure = abortErrorFor(abortReason(call), name);
        count(-1, failure);
        reject(failure);
      });
      const pump = async (): Promise<void> => {
        for (;;) {
          while (credits <= 0 && !stopping) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
          }
          if (stopping) break;
          const step = await iterator.next();
          if (step.done === true) return;
          sink.pushOne(step.value);
          credits--;
        }
        // Stopped by the consumer or an abort: the generator ends here, its `finally` runs. What that throws
        // is not the consumer's concern any more.
        try {
          await iterator.return?.();
        } catch {
          // ignored: see above
        }
      };
      pump().then(
        () => {
          unfollow();
          unsubscribe();
          order?.end();
          if (decided) return;
          decided = true;
          count(startedAt, undefined);
          resolve(undefined);
        },
        (err: unknown) => {
          unfollow();
          unsubscribe();
          order?.end();
          if (decided) return;
          decided = true;
          if (left) {
            count(startedAt, undefined);
            resolve(undefined);
            return;
          }
          const failure = handlerFailed(name, err);
          count(startedAt, failure);
          reject(failure);
        },
      );
    });
  };
  return terminal;
}

/** A streaming query's chain reached without a stream: `execute` on it (refused before the chain, normally). */
export function notAStreamCall(name: string): CqrsError {
  return new CqrsError(
    'INVALID_REGISTRATION',
    `${name} is a streaming query: read it with stream(), not execute()`,
    {
      handler: name,
    },
  );
}
