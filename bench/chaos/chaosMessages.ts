import { defineCommand } from '@cqrs-pool/core';
import type { DurableMessagingOptions } from '@cqrs-pool/jetstream';
import { z } from 'zod';

/** The chaos run's command: apply effect `seq` of `key` (the sender numbers each key's commands 0, 1, 2, …). */
export const ApplyEffect = defineCommand('ApplyEffect', {
  input: z.object({ key: z.string(), seq: z.number().int().min(0) }),
});

/** What the sender and the nodes agree on. Short timers: the run kills things and must recover in seconds. */
export const chaosOptions: DurableMessagingOptions = {
  prefix: 'chaos',
  partitions: 16,
  ackWaitMs: 2_000,
  maxDeliver: 10,
  backoff: { baseDelayMs: 50, maxDelayMs: 500 },
  duplicateWindowMs: 120_000,
  completionTtlMs: 600_000,
};

/**
 * One line of an effects file: `<messageId> <key> <seq> <node> <attempt> <startNs> <endNs>` — the times are
 * `process.hrtime.bigint()`, CLOCK_MONOTONIC, the same clock in every process of the machine.
 */
export function effectLine(
  messageId: string,
  key: string,
  seq: number,
  node: string,
  attempt: string,
  start: bigint,
  end: bigint,
): string {
  return `${messageId} ${key} ${seq} ${node} ${attempt} ${start} ${end}\n`;
}
