import type { CommandBus } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { awaitOutcome } from './commands/awaitOutcome.js';
import type { DurableServeOptions } from './commands/DurableCommandServer.js';
import { DurableCommandServer } from './commands/DurableCommandServer.js';
import type { CommandReceipt, OrderingSource, SendOptions } from './commands/sendCommand.js';
import { checkTimeout, sendCommand } from './commands/sendCommand.js';
import { CompletionStore } from './completions/CompletionStore.js';
import type { DurableOptions, ResolvedOptions } from './config/DurableOptions.js';
import { resolveOptions } from './config/DurableOptions.js';
import type { DurableContext } from './DurableContext.js';
import { DeadLetters } from './deadLetters/DeadLetters.js';
import type { SubscribeOptions } from './events/DurableEventSubscription.js';
import { DurableEventSubscription } from './events/DurableEventSubscription.js';
import type { DurableEventHandler, EventSink } from './events/EventSink.js';
import type { PublishOptions } from './events/publishEvent.js';
import { publishEvent } from './events/publishEvent.js';
import type { MessageTarget } from './send/messageTarget.js';
import type { SendReceipt } from './send/storeMessage.js';
import { ensureTopology } from './setup/ensureTopology.js';
import { checkMessageId } from './wire/messageId.js';
import { subjects } from './wire/subjects.js';

/** Options of {@link durableMessaging}: the topology's ({@link DurableOptions}) and the sender's. */
export interface DurableMessagingOptions extends DurableOptions {
  /**
   * Where `send` takes a command's ordering key when the call gives none: a `CommandBus` (the key its
   * handler was registered with, `registerHandler(def, h, { orderingKey })` — the command must be registered
   * on it) or a function `(name, input, metadata) => key`. Default: none (commands without a key are unordered).
   */
  orderingFrom?: OrderingSource;
}

/** Options of `execute` and `result`: how long to wait for the outcome. */
export interface WaitOptions {
  /** The deadline for the outcome (and, for `execute`, the store before it), in ms. Default 30 s. */
  timeoutMs?: number;
  /** Stops waiting (`ABORTED`); the command itself is not withdrawn. */
  signal?: AbortSignal;
}

/**
 * Durable commands and events on NATS JetStream for one prefix, made by {@link durableMessaging}: send
 * commands (stored, then handled once by one serving node), wait for their outcome, serve them from a
 * `CommandBus`, publish events to durable subscriber groups, and manage the dead letters.
 */
export class DurableMessaging {
  /** The dead-letter stream. */
  readonly deadLetters: DeadLetters;
  private readonly running = new Set<DurableCommandServer | DurableEventSubscription>();

  /** @internal Use {@link durableMessaging}. */
  constructor(
    private readonly ctx: DurableContext,
    private readonly orderingFrom: OrderingSource | undefined,
  ) {
    this.deadLetters = new DeadLetters(ctx);
  }

  /** The options in force, with their defaults. */
  get options(): ResolvedOptions {
    return this.ctx.options;
  }

  /**
   * Stores a command and resolves when JetStream acknowledged it (`PubAck`): from then on it is not lost
   * when a process dies. A keyed command goes to its key's partition. Nothing runs here.
   * @throws CqrsError (as a rejection) `VALIDATION` (a bad name, messageId, metadata or ordering key; an
   * input its definition's schema refuses; a message over `maxMessageBytes`), `NOT_CLONEABLE` (the codec
   * refused the input), `HANDLER_NOT_FOUND` (`orderingFrom` is a bus without the command), `UNAVAILABLE`
   * (no PubAck within `timeoutMs`: JetStream down or no stream), `ABORTED`.
   */
  send(target: MessageTarget, input: unknown, options?: SendOptions): Promise<CommandReceipt> {
    return sendCommand(this.ctx, this.orderingFrom, target, input, options);
  }

  /**
   * Sends a command and waits for its outcome: resolves with the handler's result, rejects with the error it
   * was dead-lettered with. Calling it again with the same `messageId` does not run the command twice (it
   * waits for, or finds, the same outcome).
   * @throws CqrsError (as a rejection) what `send` throws; the dead-lettered command's error (`VALIDATION`,
   * `HANDLER_FAILED`, …); `TIMEOUT` (no outcome within `timeoutMs` — the command stays stored and will run;
   * `result(messageId)` waits again); `NOT_CLONEABLE` (it completed but its result was not kept); `ABORTED`.
   */
  async execute(
    target: MessageTarget,
    input: unknown,
    options: SendOptions & WaitOptions = {},
  ): Promise<unknown> {
    const name = typeof target === 'string' ? target : String(target?.name);
    const timeoutMs = checkTimeout(options.timeoutMs, name);
    const started = performance.now();
    const messageId = options.messageId ?? crypto.randomUUID();
    return awaitOutcome(this.ctx, {
      name,
      messageId: checkMessageId(messageId, name),
      timeoutMs,
      signal: options.signal,
      // A fresh message's outcome comes after the listener; a duplicate's may be in the bucket already.
      before: async () =>
        (
          await this.send(target, input, {
            ...options,
            messageId,
            timeoutMs: Math.max(1, timeoutMs - Math.round(performance.now() - started)),
          })
        ).duplicate,
    });
  }

  /**
   * Waits for the outcome of a command sent earlier (by any process): its result, or its dead-letter error.
   * @throws CqrsError (as a rejection) as `execute`, after the send.
   */
  result(messageId: string, options: WaitOptions & { name?: string } = {}): Promise<unknown> {
    const name = options.name ?? 'result';
    try {
      return awaitOutcome(this.ctx, {
        name,
        messageId: checkMessageId(messageId, name),
        timeoutMs: checkTimeout(options.timeoutMs, name),
        signal: options.signal,
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Makes this process a serving node of the durable commands: resolves once it pulls every partition and
   * the unkeyed commands. Every node of a prefix must register every command sent to it (a command no
   * handler knows is dead-lettered as `HANDLER_NOT_FOUND`).
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` (not a `CommandBus`, a bad option),
   * `UNAVAILABLE` (the consumers cannot be reached).
   */
  async serve(bus: CommandBus, options: DurableServeOptions = {}): Promise<DurableCommandServer> {
    if (
      typeof bus !== 'object' ||
      bus === null ||
      bus.kind !== 'command' ||
      typeof bus.execute !== 'function'
    ) {
      throw new CqrsError('INVALID_REGISTRATION', 'serve: bus must be a CommandBus');
    }
    const maxInFlight = options.maxInFlight ?? 64;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `serve: options.maxInFlight must be an integer >= 1, got ${String(maxInFlight)}`,
      );
    }
    const server = new DurableCommandServer(this.ctx, bus, {
      maxInFlight,
      onError: options.onError ?? ignore,
    });
    await this.started(server);
    return server;
  }

  /**
   * Stores an event for every subscriber group; resolves at the `PubAck`. A definition with a `payload`
   * schema validates it first.
   * @throws CqrsError (as a rejection) as `send`.
   */
  publish(target: MessageTarget, payload: unknown, options?: PublishOptions): Promise<SendReceipt> {
    return publishEvent(this.ctx, target, payload, options);
  }

  /**
   * Makes this process a member of the durable subscriber group `group` (created on first use, from the
   * beginning of the stream or from now): its events are handed to `target` — an `EventSink` (core's
   * `EventBus`) or a function — and acknowledged when it succeeded.
   * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` (a bad name or option; the group exists with
   * another event filter), `UNAVAILABLE`.
   */
  async subscribe(
    group: string,
    target: EventSink | DurableEventHandler,
    options: SubscribeOptions = {},
  ): Promise<DurableEventSubscription> {
    DurableEventSubscription.checkGroup(group);
    if (typeof target !== 'function' && typeof (target as EventSink | null)?.publish !== 'function') {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        'subscribe: target must be a function or have publish(name, payload, options)',
      );
    }
    const from = options.from ?? 'all';
    if (from !== 'all' && from !== 'new')
      throw new CqrsError('INVALID_REGISTRATION', `subscribe: options.from must be 'all' or 'new'`);
    const maxAckPending = options.maxAckPending ?? 1;
    const maxInFlight = options.maxInFlight ?? Math.min(maxAckPending, 64);
    for (const [key, value] of [
      ['maxAckPending', maxAckPending],
      ['maxInFlight', maxInFlight],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new CqrsError(
          'INVALID_REGISTRATION',
          `subscribe: options.${key} must be an integer >= 1, got ${String(value)}`,
        );
      }
    }
    if (options.event !== undefined && !/^[^\s.*>]+$/.test(options.event)) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `subscribe: options.event must be an event name, got ${JSON.stringify(options.event)}`,
      );
    }
    const subscription = new DurableEventSubscription(this.ctx, group, target, {
      from,
      event: options.event,
      maxAckPending,
      maxInFlight,
      onError: options.onError ?? ignore,
    });
    await this.started(subscription);
    return subscription;
  }

  /** Stops every server and subscription made here (gracefully, as their `stop`). Leaves the connection open. */
  async close(): Promise<void> {
    await Promise.all([...this.running].map((r) => r.stop()));
    this.running.clear();
  }

  private async started<T extends DurableCommandServer | DurableEventSubscription>(part: T): Promise<void> {
    this.running.add(part);
    try {
      await part.start();
    } catch (err) {
      this.running.delete(part);
      await part.stop().catch(() => undefined);
      throw err;
    }
  }
}

/**
 * Connects cqrs-pool's durable messaging to JetStream over `nc`: creates (idempotently) the commands, events
 * and dead-letter streams, the partition consumers and the completions bucket, and returns the
 * {@link DurableMessaging} that sends, serves, publishes and subscribes. The connection stays the caller's.
 *
 * @example
 * ```ts
 * const nc = await connect({ servers: process.env.NATS_URL, maxReconnectAttempts: -1 });
 * const durable = await durableMessaging(nc, { orderingFrom: commands });
 * await durable.serve(commands);                                   // on every serving node
 * await durable.send(Deposit, { accountId: 7, amount: 5 }, { messageId: 'dep-42' });
 * ```
 * @throws CqrsError (as a rejection) `INVALID_REGISTRATION` (a bad option; an existing stream or consumer
 * that cannot be made to match), `UNAVAILABLE` (JetStream not enabled or not answering).
 */
export async function durableMessaging(
  nc: NatsConnection,
  options: DurableMessagingOptions = {},
): Promise<DurableMessaging> {
  if (typeof nc !== 'object' || nc === null || typeof nc.subscribe !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', 'durableMessaging: nc must be a NatsConnection');
  }
  const { orderingFrom, ...topology } = options;
  if (
    orderingFrom !== undefined &&
    typeof orderingFrom !== 'function' &&
    typeof (orderingFrom as { orderingKeyFor?: unknown } | null)?.orderingKeyFor !== 'function'
  ) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'durableMessaging: options.orderingFrom must be a CommandBus or a function',
    );
  }
  const o = resolveOptions(topology);
  const s = subjects(o);
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  } catch (err) {
    throw new CqrsError(
      'UNAVAILABLE',
      `durableMessaging: JetStream is not available: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  await ensureTopology(jsm, o, s);
  let kv: Awaited<ReturnType<Kvm['create']>>;
  try {
    kv = await new Kvm(js).create(o.names.completions, {
      history: 1,
      ttl: o.completionTtlMs,
      replicas: o.replicas,
      storage: o.storage === 'file' ? StorageType.File : StorageType.Memory,
    });
  } catch (err) {
    throw new CqrsError(
      'UNAVAILABLE',
      `durableMessaging: the completions bucket cannot be opened: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const ctx: DurableContext = {
    nc,
    js,
    jsm,
    options: o,
    subjects: s,
    completions: new CompletionStore(
      kv,
      o.codec,
      o.maxResultBytes,
      Math.min(2_000, Math.max(200, Math.floor(o.ackWaitMs / 4))),
    ),
    maxMessageBytes: () => {
      const ceiling = (nc.info?.max_payload ?? 1024 * 1024) - 16 * 1024;
      return Math.min(o.maxMessageBytes ?? ceiling, ceiling);
    },
  };
  return new DurableMessaging(ctx, orderingFrom);
}

function ignore(): void {}
