import type { CommandBus } from '@cqrs-pool/core';
import type { JsMsg } from '@nats-io/jetstream';
import type { ResolvedOptions } from '../config/DurableOptions.js';
import { ConsumerLoop } from '../consume/ConsumerLoop.js';
import type { DeliveryStats, ParsedDelivery } from '../consume/DeliveryProcessor.js';
import { DeliveryProcessor } from '../consume/DeliveryProcessor.js';
import { parseDelivery } from '../consume/parseDelivery.js';
import { Semaphore } from '../consume/Semaphore.js';
import type { DurableContext } from '../DurableContext.js';
import { commandConsumerName } from '../setup/ensureTopology.js';
import { isToken, UNORDERED } from '../wire/subjects.js';

/** Options of `serve` (durable commands). */
export interface DurableServeOptions {
  /**
   * Commands this node handles at once, over all partitions and the unkeyed commands (each partition adds at
   * most one). Default 64.
   */
  maxInFlight?: number;
  /**
   * Told about what goes wrong outside a handler — JetStream unreachable, a completion that could not be
   * recorded yet, a pull that ended and restarts. Default: nothing (the counts are in `stats`).
   */
  onError?: (err: unknown, where: string) => void;
}

/**
 * A node's share of the durable commands, made by `DurableMessaging.serve`: it pulls every partition's
 * consumer (one message in flight per partition across all nodes) and the unkeyed commands' consumer, and
 * runs each command through the bus with `bus.execute(name, input, { metadata })` — its middleware, its pool,
 * its metrics.
 */
export class DurableCommandServer {
  private readonly loops: ConsumerLoop[] = [];
  private readonly processor: DeliveryProcessor<ParsedDelivery>;
  private stopping: Promise<void> | undefined;

  /** @internal Use `DurableMessaging.serve`. */
  constructor(ctx: DurableContext, bus: CommandBus, options: Required<DurableServeOptions>) {
    const o = ctx.options;
    this.processor = new DeliveryProcessor(
      ctx.nc,
      ctx.js,
      ctx.completions,
      o,
      {
        parse: (m) => parseCommand(m, ctx),
        run: (parsed, metadata) => bus.execute(parsed.name, parsed.value, { metadata }),
        deadSubject: (m, parsed) => ctx.subjects.deadCommand(parsed?.name ?? lastToken(m.subject)),
        announce: (key, record) => {
          try {
            ctx.nc.publish(ctx.subjects.outcome(key), record);
          } catch {
            // Waiters find it in the completions bucket.
          }
        },
      },
      options.onError,
    );
    const slots = new Semaphore(options.maxInFlight);
    const handle = (m: JsMsg) => this.processor.process(m);
    for (let p = 0; p < o.partitions; p++) {
      this.loops.push(loop(ctx, commandConsumerName(p), true, 1, slots, handle, options.onError));
    }
    const batch = Math.min(options.maxInFlight, o.maxAckPending);
    this.loops.push(loop(ctx, commandConsumerName(UNORDERED), false, batch, slots, handle, options.onError));
  }

  /** A copy of the counts so far. */
  get stats(): DeliveryStats {
    return { ...this.processor.stats };
  }

  /** @internal */
  async start(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.start()));
  }

  /**
   * Graceful stop: takes no new command, gives back the ones pulled but not started (another node takes
   * them at once), lets the running ones finish and be acknowledged, then resolves. Idempotent. Leaves the
   * connection and the bus open.
   */
  stop(): Promise<void> {
    this.stopping ??= Promise.all(this.loops.map((l) => l.stop())).then(() => undefined);
    return this.stopping;
  }
}

function loop(
  ctx: DurableContext,
  consumer: string,
  ordered: boolean,
  maxMessages: number,
  slots: Semaphore,
  handle: (m: JsMsg) => Promise<void>,
  onError: (err: unknown, where: string) => void,
): ConsumerLoop {
  return new ConsumerLoop({
    js: ctx.js,
    stream: ctx.options.names.commands,
    consumer,
    ordered,
    maxMessages,
    slots,
    handle,
    onError,
  });
}

/** A stored command, or why it cannot be read. @internal */
export function parseCommand(
  m: JsMsg,
  ctx: { options: ResolvedOptions; subjects: DurableContext['subjects'] },
): ParsedDelivery | string {
  const where = ctx.subjects.parseCommand(m.subject);
  if (where === undefined) return `subject '${m.subject}' is not <prefix>.dcmd.<partition>.<Name>`;
  return parseDelivery(m, where.name, ctx.options, undefined);
}

function lastToken(subject: string): string {
  const last = subject.slice(subject.lastIndexOf('.') + 1);
  return isToken(last) ? last : '_';
}
