import type { DurableMessaging, DurableMessagingOptions } from '@cqrs-pool/jetstream';
import { durableMessaging } from '@cqrs-pool/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { uniquePrefix } from './testJetStream.js';

/** Retries and timers short enough for tests; every test its own prefix (its own streams). */
export function testOptions(overrides: DurableMessagingOptions = {}): DurableMessagingOptions {
  return {
    prefix: uniquePrefix('t'),
    partitions: 4,
    ackWaitMs: 2_000,
    maxDeliver: 3,
    backoff: { baseDelayMs: 20, maxDelayMs: 100 },
    duplicateWindowMs: 60_000,
    completionTtlMs: 60_000,
    ...overrides,
  };
}

/** Connections and messaging instances made by a test, closed by `closeAll`. */
export class Nodes {
  private readonly connections: NatsConnection[] = [];
  private readonly messaging: DurableMessaging[] = [];

  constructor(private readonly url: string) {}

  async connect(): Promise<NatsConnection> {
    const nc = await connect({ servers: this.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    this.connections.push(nc);
    return nc;
  }

  /** A `DurableMessaging` on a connection of its own (one per "node"). */
  async durable(options: DurableMessagingOptions): Promise<DurableMessaging> {
    const d = await durableMessaging(await this.connect(), options);
    this.messaging.push(d);
    return d;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.messaging.map((d) => d.close()));
    await Promise.all(this.connections.map((nc) => nc.close()));
    this.messaging.length = 0;
    this.connections.length = 0;
  }
}

/**
 * Resolves once `check()` is true, testing it after each event loop turn (at most every `everyMs`);
 * rejects after `withinMs` — a guard against a hang, not a measure of speed.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  withinMs = 15_000,
  everyMs = 20,
) {
  const deadline = performance.now() + withinMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`still waiting after ${withinMs} ms for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The rejection of `pending`, or a failure when it resolves. */
export async function rejection(pending: Promise<unknown>): Promise<unknown> {
  return pending.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

/** A promise with its resolve, for handlers a test holds. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
