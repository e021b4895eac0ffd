import { randomUUID } from 'node:crypto';
import type { Metadata } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { DurableContext } from '../DurableContext.js';
import { encodeMessage } from '../send/encodeMessage.js';
import type { MessageTarget } from '../send/messageTarget.js';
import { checkTarget } from '../send/messageTarget.js';
import type { SendReceipt } from '../send/storeMessage.js';
import { storeMessage } from '../send/storeMessage.js';
import { DurableHeaders } from '../wire/DurableHeaders.js';
import { checkMessageId } from '../wire/messageId.js';
import { partitionOf } from '../wire/partitionOf.js';
import { UNORDERED } from '../wire/subjects.js';

/** Options of `send` (and of `execute`, which adds waiting). */
export interface SendOptions {
  /**
   * The message's identity, for de-duplication: a second send with the same id within the stream's
   * duplicate window is not stored again, and a completed one is not run again within `completionTtlMs`.
   * 1-256 printable characters. Default: a random UUID (then a retry of the send is a new command).
   */
  messageId?: string;
  /** Handed to the handler as `ctx.metadata` (plus `messageId` and `deliveryCount`). */
  metadata?: Metadata;
  /**
   * The ordering key: commands with equal keys run one at a time in the order they were stored, across
   * nodes. Default: what `options.orderingFrom` gives for the command, else none (unordered).
   */
  orderingKey?: string | number;
  /** How long to keep trying to store it (a server restart, a lost connection) before `UNAVAILABLE`. Default 30 s. */
  timeoutMs?: number;
  /** Stops trying (`ABORTED`; the command may have been stored). */
  signal?: AbortSignal;
}

/** What `send` resolves with: the receipt and the partition the command went to (`'u'` when unkeyed). */
export interface CommandReceipt extends SendReceipt {
  readonly partition: number | 'u';
}

/** Where keyed commands get their key: a `CommandBus` (its handlers' `orderingKey`) or a function. */
export type OrderingSource =
  | { orderingKeyFor(name: string, input: unknown, metadata: Metadata): string | number | undefined }
  | ((name: string, input: unknown, metadata: Metadata) => string | number | undefined);

/** @internal */
export async function sendCommand(
  ctx: DurableContext,
  orderingFrom: OrderingSource | undefined,
  target: MessageTarget,
  input: unknown,
  options: SendOptions = {},
): Promise<CommandReceipt> {
  const name = checkTarget(target, input, 'command', 'send');
  const messageId = options.messageId === undefined ? randomUUID() : checkMessageId(options.messageId, name);
  const metadata = options.metadata ?? {};
  const key = orderingKey(orderingFrom, options, name, input, metadata);
  const partition = key === undefined ? UNORDERED : partitionOf(key, ctx.options.partitions);
  const outgoing = encodeMessage({
    name,
    subject: ctx.subjects.command(partition, name),
    value: input,
    metadata,
    messageId,
    codec: ctx.options.codec,
    maxBytes: ctx.maxMessageBytes(),
    ...(key === undefined
      ? {}
      : { extraHeaders: { [DurableHeaders.ORDERING_KEY]: `${typeof key === 'number' ? 'n' : 's'}:${key}` } }),
  });
  const ack = await storeMessage(ctx.js, outgoing.subject, outgoing.body, outgoing.headers, {
    name,
    messageId,
    timeoutMs: checkTimeout(options.timeoutMs, name),
    signal: options.signal,
  });
  return {
    messageId,
    stream: ack.stream,
    seq: ack.seq,
    duplicate: ack.duplicate,
    subject: outgoing.subject,
    partition,
  };
}

function orderingKey(
  from: OrderingSource | undefined,
  options: SendOptions,
  name: string,
  input: unknown,
  metadata: Metadata,
): string | number | undefined {
  let key: unknown = options.orderingKey;
  if (key === undefined && from !== undefined) {
    key =
      typeof from === 'function' ? from(name, input, metadata) : from.orderingKeyFor(name, input, metadata);
  }
  if (key === undefined || typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) {
    return key as string | number | undefined;
  }
  throw new CqrsError(
    'VALIDATION',
    `${name}: the ordering key must be a string or a finite number, got ${typeof key}`,
    {
      handler: name,
    },
  );
}

/** @internal */
export function checkTimeout(value: number | undefined, name: string, fallback = 30_000): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new CqrsError('VALIDATION', `${name}: options.timeoutMs must be an integer between 1 and 2^31-1`, {
      handler: name,
    });
  }
  return value;
}
