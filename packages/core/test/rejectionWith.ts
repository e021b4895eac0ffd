import type { CqrsError, ErrorCode } from '@cqrs-pool/core';
import { isCqrsError } from '@cqrs-pool/core';

type Settled = { kind: 'resolved' } | { kind: 'rejected'; err: unknown } | { kind: 'pending' };

/**
 * Awaits `pending`, which must reject with a CqrsError of `code`; returns that error. `timeoutMs` is a hang
 * guard, generous on purpose: it keeps a test that expects a refusal from hanging when the call is accepted
 * instead, and says nothing of how fast the refusal came (see {@link rejectionAtOnce} for that).
 */
export async function rejectionWith(
  pending: Promise<unknown>,
  code: ErrorCode,
  timeoutMs = 15_000,
): Promise<CqrsError> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race<Settled>([
    pending.then(
      () => ({ kind: 'resolved' }),
      (err: unknown) => ({ kind: 'rejected', err }),
    ),
    new Promise<Settled>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'pending' }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (settled.kind === 'pending')
    throw new Error(`expected ${code}, but the call was pending after ${timeoutMs} ms`);
  if (settled.kind === 'resolved')
    throw new Error(`expected a rejection with ${code}, but the call succeeded`);
  if (!isCqrsError(settled.err, code)) {
    const seen = settled.err as { code?: unknown; message?: unknown };
    throw new Error(`expected ${code}, got ${String(seen.code)}: ${String(seen.message)}`, {
      cause: settled.err,
    });
  }
  return settled.err;
}

/**
 * Like {@link rejectionWith}, and the rejection came at once: `pending` had settled before the event loop
 * turned (a `setImmediate`), so it waited for no timer, no thread's answer and no I/O — only for what this
 * turn did (the abort, the refusal). Call it right after the step that should settle the call.
 */
export async function rejectionAtOnce(pending: Promise<unknown>, code: ErrorCode): Promise<CqrsError> {
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  pending.then(done, done);
  await new Promise((resolve) => setImmediate(resolve));
  if (!settled) throw new Error(`expected ${code} at once, but the call was still pending a turn later`);
  return rejectionWith(pending, code);
}
