import { defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

/** Scores a document: CPU work (rounds of hashing) that one machine's cores would run out of. */
export const ScoreDocument = defineQuery('ScoreDocument', {
  input: z.object({ docId: z.number().int().min(0), rounds: z.number().int().min(1).max(100_000) }),
  output: z.object({ docId: z.number(), score: z.string(), servedBy: z.string() }),
});
