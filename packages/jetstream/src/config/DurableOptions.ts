import { CqrsError } from '@cqrs-pool/core';
import type { Codec } from '@cqrs-pool/nats';
import { DEFAULT_PREFIX, taggedJson } from '@cqrs-pool/nats';

/**
 * Options of {@link durableMessaging}: where the durable messages live and how they are retried. Every node
 * and every sender of one prefix must use the same values (the streams and consumers are shared; the first
 * node to start creates them, a later one with other values updates what JetStream lets it change and is
 * refused for the rest).
 */
export interface DurableOptions {
  /** Subject prefix: commands on `<prefix>.dcmd.…`, events on `<prefix>.devt.…`. Default `'cqrs'`. */
  prefix?: string;
  /**
   * Partitions of keyed commands: a command whose ordering key is `k` goes to partition `hash(k) mod
   * partitions`, consumed one message at a time across all nodes. Fixed for the life of the streams (the
   * count is written into the commands stream; another count is refused). Default 16.
   */
  partitions?: number;
  /** Replicas of every stream and of the completions bucket: 1 on one server, 3 in a production cluster. Default 1. */
  replicas?: number;
  /** Stream and bucket names. Default `<PREFIX>_COMMANDS`, `<PREFIX>_EVENTS`, `<PREFIX>_DEAD_LETTERS`, `<PREFIX>_COMPLETIONS`. */
  names?: { commands?: string; events?: string; deadLetters?: string; completions?: string };
  /** `file` (survives a server restart) or `memory`. Default `file`. */
  storage?: 'file' | 'memory';
  /**
   * The longest a command waits in its stream to be handled before JetStream drops it; 0 keeps it until it
   * is handled or dead-lettered. Default 0.
   */
  commandMaxAgeMs?: number;
  /** How long events stay in their stream (a new group starting from the beginning sees this far back); 0 forever. Default 7 days. */
  eventMaxAgeMs?: number;
  /** How long dead letters are kept; 0 until they are replayed or discarded. Default 0. */
  deadLetterMaxAgeMs?: number;
  /** JetStream's de-duplication window for `Nats-Msg-Id` (the `messageId`) on every stream. Default 2 min. */
  duplicateWindowMs?: number;
  /**
   * How long a completed `messageId` is remembered (the completions bucket's TTL): a redelivery or a re-send
   * of a completed message within it is acknowledged without running. At least `duplicateWindowMs` and the
   * redelivery horizon (`maxDeliver × (ackWaitMs + backoff.maxDelayMs)`). Default 24 h.
   */
  completionTtlMs?: number;
  /** How long a node may hold a message without news before JetStream gives it to another; a running handler extends it (`working()` every third of it). Default 30 s. */
  ackWaitMs?: number;
  /** Attempts of one message (failures and deliveries that got no outcome) before it is dead-lettered. Default 5. */
  maxDeliver?: number;
  /** Delay before attempt n+1 after a transient failure: `min(maxDelayMs, baseDelayMs × 2^(n-1))` ± 20 %. Default 500 ms, 30 s. */
  backoff?: { baseDelayMs?: number; maxDelayMs?: number };
  /** Unkeyed commands delivered and not yet acknowledged, across all nodes. Default 1000. */
  maxAckPending?: number;
  /**
   * The largest command or event a sender stores (encoded input and headers): a larger one is refused at
   * send time with `VALIDATION`. Default and maximum: the server's `max_payload` less 16 KiB (room for the
   * headers a dead letter adds).
   */
  maxMessageBytes?: number;
  /** The largest result kept for waiters, encoded; a larger one completes the command but is not kept. Default 256 KiB. */
  maxResultBytes?: number;
  /** Encodes inputs, payloads and results. Default `taggedJson`. Every node and sender must agree. */
  codec?: Codec;
}

/** {@link DurableOptions} checked and with defaults. @internal */
export interface ResolvedOptions {
  readonly prefix: string;
  readonly partitions: number;
  readonly replicas: number;
  readonly names: {
    readonly commands: string;
    readonly events: string;
    readonly deadLetters: string;
    readonly completions: string;
  };
  readonly storage: 'file' | 'memory';
  readonly commandMaxAgeMs: number;
  readonly eventMaxAgeMs: number;
  readonly deadLetterMaxAgeMs: number;
  readonly duplicateWindowMs: number;
  readonly completionTtlMs: number;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxAckPending: number;
  readonly maxMessageBytes: number | undefined;
  readonly maxResultBytes: number;
  readonly codec: Codec;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const token = /^[^\s.*>]+$/;
const streamName = /^[A-Za-z0-9_-]{1,64}$/;

/** @throws CqrsError `INVALID_REGISTRATION` naming the option that is wrong. @internal */
export function resolveOptions(options: DurableOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || prefix === '' || !prefix.split('.').every((t) => token.test(t))) {
    fail(`options.prefix must be dot-separated NATS subject tokens, got ${JSON.stringify(prefix)}`);
  }
  const base = prefix.replace(/[^A-Za-z0-9_-]/g, '_').toUpperCase();
  const names = {
    commands: options.names?.commands ?? `${base}_COMMANDS`,
    events: options.names?.events ?? `${base}_EVENTS`,
    deadLetters: options.names?.deadLetters ?? `${base}_DEAD_LETTERS`,
    completions: options.names?.completions ?? `${base}_COMPLETIONS`,
  };
  for (const [key, value] of Object.entries(names)) {
    if (typeof value !== 'string' || !streamName.test(value)) {
      fail(`options.names.${key} must be 1-64 letters, digits, '_' or '-', got ${JSON.stringify(value)}`);
    }
  }
  if (new Set(Object.values(names)).size !== 4) fail('options.names must be four different names');
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') fail(`options.storage must be 'file' or 'memory'`);
  const codec = options.codec ?? taggedJson;
  if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
    fail('options.codec must have encode and decode');
  }
  const resolved: ResolvedOptions = {
    prefix,
    partitions: int(options.partitions, 'partitions', 16, 1, 1024),
    replicas: int(options.replicas, 'replicas', 1, 1, 5),
    names,
    storage,
    commandMaxAgeMs: int(options.commandMaxAgeMs, 'commandMaxAgeMs', 0, 0),
    eventMaxAgeMs: int(options.eventMaxAgeMs, 'eventMaxAgeMs', 7 * DAY, 0),
    deadLetterMaxAgeMs: int(options.deadLetterMaxAgeMs, 'deadLetterMaxAgeMs', 0, 0),
    duplicateWindowMs: int(options.duplicateWindowMs, 'duplicateWindowMs', 2 * MINUTE, 100),
    completionTtlMs: int(options.completionTtlMs, 'completionTtlMs', DAY, 1000),
    ackWaitMs: int(options.ackWaitMs, 'ackWaitMs', 30_000, 300),
    maxDeliver: int(options.maxDeliver, 'maxDeliver', 5, 1, 1000),
    baseDelayMs: int(options.backoff?.baseDelayMs, 'backoff.baseDelayMs', 500, 0),
    maxDelayMs: int(options.backoff?.maxDelayMs, 'backoff.maxDelayMs', 30_000, 0),
    maxAckPending: int(options.maxAckPending, 'maxAckPending', 1000, 1, 1_000_000),
    maxMessageBytes:
      options.maxMessageBytes === undefined
        ? undefined
        : int(options.maxMessageBytes, 'maxMessageBytes', 0, 64),
    maxResultBytes: int(options.maxResultBytes, 'maxResultBytes', 256 * 1024, 0),
    codec,
  };
  if (resolved.maxDelayMs < resolved.baseDelayMs) {
    fail('options.backoff.maxDelayMs must be >= options.backoff.baseDelayMs');
  }
  // JetStream refuses a duplicate window longer than a stream's max age.
  for (const key of ['commandMaxAgeMs', 'eventMaxAgeMs', 'deadLetterMaxAgeMs'] as const) {
    const age = resolved[key];
    if (age !== 0 && age < resolved.duplicateWindowMs) {
      fail(
        `options.${key} (${age}) must be 0 (no limit) or at least duplicateWindowMs (${resolved.duplicateWindowMs})`,
      );
    }
  }
  const horizon = resolved.maxDeliver * (resolved.ackWaitMs + resolved.maxDelayMs);
  if (resolved.completionTtlMs < resolved.duplicateWindowMs || resolved.completionTtlMs < horizon) {
    fail(
      `options.completionTtlMs (${resolved.completionTtlMs}) must be at least duplicateWindowMs ` +
        `(${resolved.duplicateWindowMs}) and the redelivery horizon maxDeliver x (ackWaitMs + backoff.maxDelayMs) (${horizon})`,
    );
  }
  return resolved;
}

function int(value: unknown, option: string, fallback: number, min: number, max = 2 ** 31 * 1000): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`options.${option} must be an integer >= ${min} and <= ${max}, got ${String(value)}`);
  }
  return value;
}

function fail(message: string): never {
  throw new CqrsError('INVALID_REGISTRATION', `durableMessaging: ${message}`);
}
