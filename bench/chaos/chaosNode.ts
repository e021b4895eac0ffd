/**
 * A serving node of the chaos run, a process of its own: a one-thread pool, a CommandBus with validation
 * and `ApplyEffect` in the pool, served from JetStream (`NATS_URL`). Prints `ready`; on SIGTERM stops
 * gracefully and prints `stats <json>`. SIGKILL is the point of the run.
 */
import { CommandBus, inWorker, validation, WorkerPool } from '@cqrs-pool/core';
import { durableMessaging } from '@cqrs-pool/jetstream';
import { connect } from '@nats-io/transport-node';
import { ApplyEffect, chaosOptions } from './chaosMessages.js';

const node = process.env.NODE_ID ?? 'node';
const nc = await connect({
  servers: process.env.NATS_URL ?? '',
  name: node,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 100,
  noAsyncTraces: true,
});
const pool = new WorkerPool({ threads: 1 });
const commands = new CommandBus({ pool, middleware: [validation()] });
commands.registerHandler(
  ApplyEffect,
  inWorker(new URL('./chaosHandlers.js', import.meta.url), 'applyEffect'),
  {
    orderingKey: (input) => input.key,
  },
);
await commands.ready();
const durable = await durableMessaging(nc, chaosOptions);
let errors = 0;
const server = await durable.serve(commands, {
  maxInFlight: 64,
  onError: (err, where) => {
    // The server's restart makes a burst of these; a few tell what happened.
    if (errors++ < 3) console.error(`${where}: ${(err as Error).message}`);
  },
});
console.log('ready');

process.once('SIGTERM', () => {
  void (async () => {
    await server.stop();
    await commands.close();
    await pool.close();
    await nc.drain().catch(() => undefined);
    console.log(`stats ${JSON.stringify({ ...server.stats, errors })}`);
  })();
});
