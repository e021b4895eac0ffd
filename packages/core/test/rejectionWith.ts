import type { CqrsError, ErrorCode } from '@cqrs-pool/core';
import { isCqrsError } from '@cqrs-pool/core';

type Settled = { kind: 'resolved' } | { kind: 'rejected'; err: unknown } | { kind: 'pending' };

/**
 * Awaits `pending`, which must reject with a CqrsError of `code` within `timeoutMs`; returns that error. The
 * bound keeps a test that expects a refusal from hanging when the call is accepted instead.
 */
export async function rejectionWith(
  pending: Promise<unknown>,
  code: ErrorCode,
  timeoutMs = 5000,
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
