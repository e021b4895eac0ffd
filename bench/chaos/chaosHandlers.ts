/**
 * The chaos nodes' handler, run in their pool threads: appends its effect synchronously to the node's
 * effects file. On a later attempt (`deliveryCount` > 1: an attempt ran before and its node died before the
 * outcome was recorded) it first looks for its messageId among the effects already written — the effect and
 * its record are one and the same line, so a command whose effect happened is not applied twice. That is the
 * idempotency the README asks of handlers for the at-least-once window; `CHAOS_EFFECT_CHECK=off` drops it
 * to show the window.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { handle } from '@cqrs-pool/core/worker';
import { ApplyEffect, effectLine } from './chaosMessages.js';

const file = process.env.EFFECTS_FILE ?? '';
const dir = process.env.EFFECTS_DIR ?? '';
const node = process.env.NODE_ID ?? 'node';
const check = process.env.CHAOS_EFFECT_CHECK !== 'off';

function alreadyApplied(messageId: string): boolean {
  const needle = `${messageId} `;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.effects')) continue;
    const text = readFileSync(join(dir, name), 'utf8');
    if (text.startsWith(needle) || text.includes(`\n${needle}`)) return true;
  }
  return false;
}

export const applyEffect = handle(ApplyEffect, (input, ctx) => {
  const start = process.hrtime.bigint();
  const messageId = ctx.metadata.messageId ?? '';
  const attempt = ctx.metadata.deliveryCount ?? '?';
  if (attempt !== '1' && check && alreadyApplied(messageId)) {
    console.log(`caught ${messageId} attempt ${attempt}`);
    return 'already applied';
  }
  appendFileSync(
    file,
    effectLine(messageId, input.key, input.seq, node, attempt, start, process.hrtime.bigint()),
  );
  return 'applied';
});
