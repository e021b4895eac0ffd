/**
 * The serving node of remote.bench.ts, in its own process as on another machine: a one-thread pool running
 * the benches' `add` handler, served on NATS (`NATS_URL`, under `CQRS_PREFIX`). Prints `ready`; exits on
 * SIGTERM after a graceful stop.
 */
import { CommandBus, defineCommand, inWorker, WorkerPool } from '@cqrs-pool/core';
import { serve } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { z } from 'zod';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const nc = await connect({ servers: process.env.NATS_URL ?? '' });
const pool = new WorkerPool({ threads: 1 });
const commands = new CommandBus({ pool, metrics: false });
commands.registerHandler(Add, inWorker(new URL('./handlers/add.js', import.meta.url), 'add'));
await commands.ready();
const server = serve(nc, commands, { prefix: process.env.CQRS_PREFIX ?? 'cqrs', maxInFlight: 4096 });
await nc.flush();
console.log('ready');
process.once('SIGTERM', () => {
  void (async () => {
    await server.stop();
    await commands.close();
    await pool.close();
    await nc.drain();
  })();
});
