// The shutdown example's messages and its one worker handler (pool threads import this file).
import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';

/** CPU work the size of a small request: hashes `rounds` times, returns the digest. */
export const Digest = defineCommand('Digest', {
  input: z.object({ seed: z.number().int(), rounds: z.number().int().min(1).max(100_000) }),
  output: z.number(),
});
/** Cheap, answered on the main thread. */
export const Health = defineQuery('Health', { input: z.object({}), output: z.string() });

export const digest = handle(Digest, ({ seed, rounds }) => {
  let h = seed >>> 0;
  for (let i = 0; i < rounds; i++) h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  return h;
});
