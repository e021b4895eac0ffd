// Runs inside the pool threads of each serving node.
import { createHash } from 'node:crypto';
import { handle } from '@cqrs-pool/core/worker';
import { ScoreDocument } from './messages.js';

export const scoreDocument = handle(ScoreDocument, (input, ctx) => {
  let digest = String(input.docId);
  for (let i = 0; i < input.rounds && !ctx.isCancelled(); i++) {
    digest = createHash('sha256').update(digest).digest('hex');
  }
  // Threads share their process's environment: NODE_ID names the serving node.
  return { docId: input.docId, score: digest.slice(0, 12), servedBy: process.env.NODE_ID ?? 'unknown' };
});
