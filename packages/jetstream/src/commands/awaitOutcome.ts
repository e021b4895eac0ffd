import { CqrsError } from '@cqrs-pool/core';
import type { Completion } from '../completions/CompletionStore.js';
import type { DurableContext } from '../DurableContext.js';
import { completionKey } from '../wire/messageId.js';

/** @internal */
export interface AwaitOptions {
  readonly name: string;
  readonly messageId: string;
  /** The deadline, ms from now. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /**
   * Runs once the outcome subject is subscribed (the send, for `execute`); a rejection ends the wait. False
   * skips the look-up in the bucket: the message was new, so its outcome can only come after the listener.
   */
  readonly before?: () => Promise<boolean>;
}

/**
 * Waits for the outcome of a durable command: listens on its outcome subject (a serving node announces the
 * record it stored there, and again when it meets a completed message a second time), and reads the
 * completions bucket once the listener is in place (an outcome that came before; not after a fresh send)
 * and once more at the deadline (an announcement lost with a connection). No polling.
 * @throws CqrsError (as a rejection) the dead-lettered command's error, `TIMEOUT` (no outcome by the
 * deadline: the command stays stored and will run), `NOT_CLONEABLE` (it completed but its result was not
 * kept), `ABORTED`, and whatever `before` rejects with.
 * @internal
 */
export function awaitOutcome(ctx: DurableContext, options: AwaitOptions): Promise<unknown> {
  const { name, messageId, signal } = options;
  const key = completionKey(messageId);
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const sub = ctx.nc.subscribe(ctx.subjects.outcome(key), {
      callback: (err, msg) => {
        if (err === null) finish(ctx.completions.decode(msg.data, name));
      },
    });
    const onAbort = (): void =>
      fail(
        new CqrsError('ABORTED', `${name}: stopped waiting for '${messageId}' (aborted)`, {
          cause: signal?.reason,
          handler: name,
        }),
      );
    const cleanUp = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sub.unsubscribe();
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      cleanUp();
      reject(err);
    };
    const finish = (completion: Completion | undefined): void => {
      if (settled || completion === undefined) return;
      cleanUp();
      if (completion.status === 'dead-lettered') reject(completion.error);
      else if (completion.kept) resolve(completion.result);
      else {
        reject(
          new CqrsError(
            'NOT_CLONEABLE',
            `${name}: '${messageId}' completed, but its result was not kept: ${completion.why}`,
            {
              handler: name,
            },
          ),
        );
      }
    };
    const lookUp = async (): Promise<Completion | undefined> => {
      const record = await ctx.completions.get(key);
      return record === undefined ? undefined : ctx.completions.decode(record, name);
    };
    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => {
      void lookUp()
        .catch(() => undefined)
        .then((completion) => {
          finish(completion);
          fail(
            new CqrsError(
              'TIMEOUT',
              `${name}: no outcome for '${messageId}' within ${options.timeoutMs} ms; it stays stored and will run (wait again with result())`,
              { handler: name },
            ),
          );
        });
    }, options.timeoutMs);
    void (async () => {
      try {
        if ((await options.before?.()) === false) return;
      } catch (err) {
        fail(err);
        return;
      }
      try {
        finish(await lookUp());
      } catch {
        // The announcement or the look-up at the deadline will tell.
      }
    })();
  });
}
