import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Semaphore } from './Semaphore.js';

/** @internal */
export interface ConsumerLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  /** One message at a time, each settled before the next is taken (a partition). */
  readonly ordered: boolean;
  /** Messages pulled at once (the client's buffer). */
  readonly maxMessages: number;
  /** The node-wide bound on messages being handled. */
  readonly slots: Semaphore;
  /** Handles one message to its ack, nak or term; must not reject. */
  readonly handle: (m: JsMsg) => Promise<void>;
  /** Told about what goes wrong outside a message (a consumer that vanished, a lost pull). */
  readonly onError: (err: unknown, where: string) => void;
}

/**
 * Pulls one durable consumer and hands its messages to `handle`: one at a time for an ordered consumer,
 * else as many as the node's slots allow. Pulling follows handling — the client asks the server for more
 * only as the loop takes messages out of its buffer — so a slow node does not hoard messages whose ack
 * timers run. When the pull ends (the consumer was deleted, the server is gone for long), it starts again.
 * @internal
 */
export class ConsumerLoop {
  private messages: ConsumerMessages | undefined;
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;

  constructor(private readonly o: ConsumerLoopOptions) {}

  /** Starts pulling; resolves once the first pull is set up. Rejects when the consumer cannot be had. */
  async start(): Promise<void> {
    this.messages = await this.open();
    this.running = this.run();
  }

  /**
   * Stops pulling and resolves when every message it took is settled. Messages still in the client's
   * buffer are nak'ed at once (another node takes them without waiting for their ack timer).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.messages?.close().catch(() => undefined);
    await this.running;
    await Promise.all([...this.inFlight]);
  }

  private async open(): Promise<ConsumerMessages> {
    const consumer = await this.o.js.consumers.get(this.o.stream, this.o.consumer);
    return consumer.consume({ max_messages: this.o.maxMessages });
  }

  private async run(): Promise<void> {
    let messages = this.messages;
    while (!this.stopping) {
      if (messages === undefined) {
        try {
          messages = await this.open();
          this.messages = messages;
          if (this.stopping) await messages.close();
        } catch (err) {
          this.o.onError(err, `pulling ${this.o.stream}/${this.o.consumer}`);
          await this.pause(1_000);
          continue;
        }
      }
      try {
        for await (const m of messages) {
          if (this.stopping) {
            m.nak();
            continue;
          }
          const waiting = this.o.slots.acquire();
          if (waiting !== undefined) await waiting;
          if (this.stopping) {
            this.o.slots.release();
            m.nak();
            continue;
          }
          const handled: Promise<void> = this.o
            .handle(m)
            .catch((err: unknown) => this.o.onError(err, `handling ${m.subject}`))
            .finally(() => {
              this.o.slots.release();
              this.inFlight.delete(handled);
            });
          this.inFlight.add(handled);
          if (this.o.ordered) await handled;
        }
      } catch (err) {
        if (!this.stopping) this.o.onError(err, `pulling ${this.o.stream}/${this.o.consumer}`);
      }
      messages = undefined;
      if (!this.stopping) await this.pause(1_000);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
