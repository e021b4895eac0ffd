// Runs inside pool threads: imported by the thread entry, never by the main thread.
import { scryptSync } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { handle } from '@cqrs-pool/core/worker';
import { BuildUserReport, ListUsers } from './messages.js';

export const buildUserReport = handle(BuildUserReport, async (input, ctx) => {
  // A nested query: goes to the main thread's QueryBus (its middleware included) and comes back here.
  const users = await ctx.queries.execute(ListUsers, {});
  const fingerprints = [];
  for (const user of users) {
    // Cooperative cancellation: a shared-memory flag, cheap to poll between units of CPU work.
    if (ctx.isCancelled()) throw new Error('report cancelled');
    // Real CPU work, off the main thread: key stretching with scrypt.
    const key = scryptSync(user.email, user.username, 16, { N: input.rounds, maxmem: 256 * 1024 * 1024 });
    fingerprints.push({ username: user.username, fingerprint: key.toString('hex') });
  }
  const correlationId = ctx.metadata.correlationId;
  return {
    users: users.length,
    fingerprints,
    thread: threadId,
    ...(correlationId === undefined ? {} : { correlationId }),
  };
});
