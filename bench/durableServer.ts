/**
 * The serving node of durable.bench.ts, in its own process as on another machine: a one-thread pool running
 * the benches' `add` handler, served both ways — from JetStream as durable commands and on NATS
 * request/reply — so the two transports reach the same bus, pool and handler. Prints `ready`; exits on
 * SIGTERM after a graceful stop.
 */
import { CommandBus, defineCommand, inWorker, WorkerPool } from '@cqrs-pool/core';
import { durableMessaging } from '@cqrs-pool/jetstream';
import { serve } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { z } from 'zod';
import { benchDurableOptions } from './durableOptions.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
// noAsyncTraces: nats.js would otherwise build two Error objects (stack traces) per request.
const nc = await connect({ servers: process.env.NATS_URL ?? '', noAsyncTraces: true });
const pool = new WorkerPool({ threads: 1 });
const commands = new CommandBus({ pool, metrics: false });
commands.registerHandler(Add, inWorker(new URL('./handlers/add.js', import.meta.url), 'add'));
await commands.ready();
const durable = await durableMessaging(nc, benchDurableOptions);
const durableServer = await durable.serve(commands, { maxInFlight: 256 });
const replyServer = serve(nc, commands, { prefix: 'bench', maxInFlight: 4096 });
await nc.flush();
console.log('ready');
process.once('SIGTERM', () => {
  void (async () => {
    await durableServer.stop();
    await replyServer.stop();
    await commands.close();
    await pool.close();
    await nc.drain();
    console.error(`durable node: ${JSON.stringify(durableServer.stats)}`);
  })();
});
