// A serving node: its own worker pool and query bus, its handlers served on NATS in a queue group shared
// with every other node. main.ts starts two of these; in production each runs on its own machine.
//
//   NATS_URL=nats://… NODE_ID=server-1 node dist/examples/scaling-out/node.js
import { inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { serve } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { ScoreDocument } from './messages.js';

const nodeId = process.env.NODE_ID ?? `node-${process.pid}`;
const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', name: nodeId });
const pool = new WorkerPool({ threads: 1 });
const queries = new QueryBus({ pool });
queries.registerHandler(ScoreDocument, inWorker(new URL('./handlers.js', import.meta.url), 'scoreDocument'));
await queries.ready();

const server = serve(nc, queries, { prefix: process.env.CQRS_PREFIX ?? 'cqrs' });
await nc.flush();
console.log(`${nodeId} ready on ${server.subjects.join(', ')}`);

// Graceful stop: take nothing new (the queue group sends it to the other nodes), finish what is in hand.
process.once('SIGTERM', () => {
  void (async () => {
    await server.stop();
    await queries.close();
    await pool.close();
    await nc.drain();
    console.log(`${nodeId} stopped: ${JSON.stringify(server.stats)}`);
  })();
});
