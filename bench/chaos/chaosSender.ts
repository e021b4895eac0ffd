/**
 * The sender of the chaos run, a process of its own: `CHAOS_COMMANDS` commands (default 5000) with unique
 * messageIds over `CHAOS_KEYS` keys (default 200), each key's commands numbered 0, 1, 2, … and stored in that
 * order (a key's next send waits for the previous PubAck), keys in parallel, paced at `CHAOS_RATE` commands
 * per second so that the run's kills land mid-send. A send that meets a dead server is retried with the same
 * messageId until stored. Prints `sent <n>` as it goes and `done <n> <ms>` at the end.
 */
import { isCqrsError } from '@cqrs-pool/core';
import { durableMessaging } from '@cqrs-pool/jetstream';
import { connect } from '@nats-io/transport-node';
import { ApplyEffect, chaosOptions } from './chaosMessages.js';

const total = Number(process.env.CHAOS_COMMANDS ?? 5_000);
const keys = Number(process.env.CHAOS_KEYS ?? 200);
const rate = Number(process.env.CHAOS_RATE ?? 500);
const nc = await connect({
  servers: process.env.NATS_URL ?? '',
  name: 'sender',
  maxReconnectAttempts: -1,
  reconnectTimeWait: 100,
  noAsyncTraces: true,
});
const durable = await durableMessaging(nc, chaosOptions);
const started = performance.now();
let sent = 0;
let retried = 0;

async function sendKey(k: number): Promise<void> {
  for (let i = k, seq = 0; i < total; i += keys, seq++) {
    // Paced: command i leaves no earlier than i / rate seconds into the run.
    const due = started + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    for (;;) {
      try {
        await durable.send(
          ApplyEffect,
          { key: `key-${k}`, seq },
          {
            messageId: `cmd-${i}`,
            orderingKey: `key-${k}`,
            timeoutMs: 10_000,
          },
        );
        break;
      } catch (err) {
        // UNAVAILABLE: no PubAck in time (the server is down); anything else is a bug to show.
        if (!isCqrsError(err, 'UNAVAILABLE')) throw err;
        retried++;
      }
    }
    if (++sent % 500 === 0) console.log(`sent ${sent}`);
  }
}

await Promise.all(Array.from({ length: keys }, (_, k) => sendKey(k)));
console.log(`done ${sent} ${Math.round(performance.now() - started)} retried ${retried}`);
await nc.drain().catch(() => undefined);
