import { CqrsError } from '@cqrs-pool/core';
import type {
  ConsumerConfig,
  ConsumerInfo,
  JetStreamManager,
  StreamConfig,
  StreamInfo,
} from '@nats-io/jetstream';
import { AckPolicy, DeliverPolicy, ReplayPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { ResolvedOptions } from '../config/DurableOptions.js';
import type { Subjects } from '../wire/subjects.js';
import { UNORDERED } from '../wire/subjects.js';

const NOT_FOUND_STREAM = 10059;
const NOT_FOUND_CONSUMER = 10014;
const STREAM_NAME_IN_USE = 10058;

/** ms → the nanoseconds JetStream's configuration speaks. @internal */
export const nanos = (ms: number): number => ms * 1_000_000;

/** The durable consumer of partition `p` of the commands stream, or of the unkeyed commands. @internal */
export function commandConsumerName(partition: number | typeof UNORDERED): string {
  return partition === UNORDERED ? 'unordered' : `partition-${partition}`;
}

/**
 * Creates the three streams and the consumers of the commands stream, idempotently: what exists with the
 * same configuration is left alone, what differs in a field JetStream can change is updated, and what
 * cannot change (retention, storage, the partition count, a consumer's filter) is refused.
 * @throws CqrsError `INVALID_REGISTRATION` (an existing stream or consumer that cannot be made to match),
 * `UNAVAILABLE` (JetStream refused or did not answer).
 * @internal
 */
export async function ensureTopology(jsm: JetStreamManager, o: ResolvedOptions, s: Subjects): Promise<void> {
  const storage = o.storage === 'file' ? StorageType.File : StorageType.Memory;
  const common = {
    storage,
    num_replicas: o.replicas,
    duplicate_window: nanos(o.duplicateWindowMs),
  };
  await ensureStream(
    jsm,
    {
      ...common,
      name: o.names.commands,
      subjects: [s.commands],
      retention: RetentionPolicy.Workqueue,
      max_age: nanos(o.commandMaxAgeMs),
      description: `cqrs-pool durable commands; partitions=${o.partitions}`,
    },
    o,
  );
  await ensureStream(
    jsm,
    {
      ...common,
      name: o.names.events,
      subjects: [s.events],
      retention: RetentionPolicy.Limits,
      max_age: nanos(o.eventMaxAgeMs),
      description: 'cqrs-pool durable events',
    },
    o,
  );
  await ensureStream(
    jsm,
    {
      ...common,
      name: o.names.deadLetters,
      subjects: [s.deadLetters],
      retention: RetentionPolicy.Limits,
      max_age: nanos(o.deadLetterMaxAgeMs),
      description: 'cqrs-pool dead letters',
    },
    o,
  );
  const consumers: Promise<void>[] = [];
  for (let p = 0; p < o.partitions; p++) {
    consumers.push(ensureConsumer(jsm, o.names.commands, commandConsumer(o, s, p, 1)));
  }
  consumers.push(ensureConsumer(jsm, o.names.commands, commandConsumer(o, s, UNORDERED, o.maxAckPending)));
  await Promise.all(consumers);
}

function commandConsumer(
  o: ResolvedOptions,
  s: Subjects,
  partition: number | typeof UNORDERED,
  maxAckPending: number,
): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: commandConsumerName(partition),
    filter_subject: s.partitionFilter(partition),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    ack_wait: nanos(o.ackWaitMs),
    // Unlimited here: the node counts attempts itself and dead-letters at `maxDeliver`. JetStream's own
    // limit would silently stop redelivering a message that is still in the work queue.
    max_deliver: -1,
    max_ack_pending: maxAckPending,
  };
}

/** Creates or updates one stream. @internal */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
  o: ResolvedOptions,
): Promise<void> {
  let info = await streamInfo(jsm, config.name);
  if (info === undefined) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (err) {
      // Another node created it between our look and our add: compare with what it made.
      if (apiCode(err) !== STREAM_NAME_IN_USE) throw unavailable(`creating stream ${config.name}`, err);
      info = await streamInfo(jsm, config.name);
      if (info === undefined) throw unavailable(`creating stream ${config.name}`, err);
    }
  }
  const current = info.config;
  if (current.retention !== config.retention || current.storage !== config.storage) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `stream ${config.name} exists with retention ${current.retention} and storage ${current.storage}; ` +
        `cqrs-pool needs ${config.retention} and ${config.storage} (use other names, or delete it)`,
    );
  }
  const partitions = /partitions=(\d+)/.exec(current.description ?? '')?.[1];
  if (config.name === o.names.commands && partitions !== undefined && Number(partitions) !== o.partitions) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `stream ${config.name} was created with ${partitions} partitions, options.partitions is ${o.partitions}: ` +
        'senders and nodes must agree (drain the stream and delete it to change the count)',
    );
  }
  const differs =
    JSON.stringify(current.subjects) !== JSON.stringify(config.subjects) ||
    current.max_age !== config.max_age ||
    current.duplicate_window !== config.duplicate_window ||
    current.num_replicas !== config.num_replicas ||
    current.description !== config.description;
  if (!differs) return;
  try {
    await jsm.streams.update(config.name, {
      ...current,
      subjects: config.subjects ?? current.subjects,
      max_age: config.max_age ?? current.max_age,
      duplicate_window: config.duplicate_window ?? current.duplicate_window,
      num_replicas: config.num_replicas ?? current.num_replicas,
      description: config.description ?? '',
    });
  } catch (err) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `stream ${config.name} exists with another configuration that JetStream refused to update: ${message(err)}`,
      { cause: err },
    );
  }
}

/** Creates or updates one durable consumer. @internal */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  const name = config.durable_name;
  let info: ConsumerInfo | undefined;
  try {
    info = await jsm.consumers.info(stream, name);
  } catch (err) {
    if (apiCode(err) !== NOT_FOUND_CONSUMER) throw unavailable(`reading consumer ${stream}/${name}`, err);
  }
  if (info === undefined) {
    try {
      await jsm.consumers.add(stream, config);
      return;
    } catch (err) {
      // A concurrent creation with the same configuration succeeds; with another one it lands below.
      info = await jsm.consumers.info(stream, name).catch(() => undefined);
      if (info === undefined) throw unavailable(`creating consumer ${stream}/${name}`, err);
    }
  }
  const current = info.config;
  if ((current.filter_subject ?? '') !== (config.filter_subject ?? '')) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `consumer ${stream}/${name} exists with filter '${current.filter_subject ?? ''}', not '${config.filter_subject ?? ''}'`,
    );
  }
  if (
    current.ack_wait === config.ack_wait &&
    current.max_ack_pending === config.max_ack_pending &&
    current.max_deliver === config.max_deliver
  ) {
    return;
  }
  try {
    await jsm.consumers.update(stream, name, {
      ...(config.ack_wait === undefined ? {} : { ack_wait: config.ack_wait }),
      ...(config.max_ack_pending === undefined ? {} : { max_ack_pending: config.max_ack_pending }),
      ...(config.max_deliver === undefined ? {} : { max_deliver: config.max_deliver }),
    });
  } catch (err) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `consumer ${stream}/${name} exists with another configuration that JetStream refused to update: ${message(err)}`,
      { cause: err },
    );
  }
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (apiCode(err) === NOT_FOUND_STREAM) return undefined;
    throw unavailable(`reading stream ${name}`, err);
  }
}

/** The JetStream API error code of an error (`err_code`: 10059 stream not found, …), or undefined. @internal */
export function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function unavailable(doing: string, err: unknown): CqrsError {
  return new CqrsError('UNAVAILABLE', `JetStream: ${doing} failed: ${message(err)}`, { cause: err });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
