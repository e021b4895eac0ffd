/**
 * A call over NATS against the same call in this process's pool, side by side in one run: the `add` worker
 * handler (bench/handlers/add.ts) executed through `execute`, awaited one at a time (round-trip latency),
 * and 1000 at once (throughput: 1000 calls per iteration) — remote with batching (the default: calls made
 * together travel many to a message, answered in chunks) and without (`batching: false`, one message per
 * call). The remote side is a serving node in a process of its own (bench/remoteServer.ts) with the same
 * one-thread pool; the baseline is a one-thread pool here. Both processes share this machine, so the remote
 * rows include the NATS server's and the other process's CPU — on separate machines the hop costs latency
 * but the work spreads.
 *
 *   node build.mjs --fast && node dist/bench/remote.bench.js [--json]
 *   (uses NATS_URL if set, else starts a local nats-server for the run)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CommandBus, defineCommand, inWorker, WorkerPool } from '@cqrs-pool/core';
import { RemoteClient, remote } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { bench, do_not_optimize, group } from 'mitata';
import { z } from 'zod';
import { localNats } from '../examples/scaling-out/localNatsServer.js';
import { medianOf, report } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const input = { a: 1, b: 2 };
const BATCH = 1000;

const found = await localNats();
if (!found.ok) {
  console.error(`remote.bench: ${found.reason}`);
  process.exit(2);
}
const nats = found.nats;
const prefix = `bench${process.pid}`;

const server = spawn(process.execPath, [fileURLToPath(new URL('./remoteServer.js', import.meta.url))], {
  env: { ...process.env, NATS_URL: nats.url, CQRS_PREFIX: prefix },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve, reject) => {
  server.stdout?.on('data', (chunk: Buffer) => {
    if (String(chunk).includes('ready')) resolve();
  });
  server.once('exit', (code) => reject(new Error(`the serving node exited (${code}) before it was ready`)));
});

const pool = new WorkerPool({ threads: 1, maxQueue: 4 * BATCH });
const local = new CommandBus({ pool, metrics: false });
local.registerHandler(Add, inWorker(new URL('./handlers/add.js', import.meta.url), 'add'));
await local.ready();

const nc = await connect({ servers: nats.url });
const batchedClient = new RemoteClient(nc, { prefix, maxInFlight: 4 * BATCH });
const batched = new CommandBus({ metrics: false });
batched.registerHandler(Add, remote(batchedClient));
const unbatched = new CommandBus({ metrics: false });
unbatched.registerHandler(
  Add,
  remote(new RemoteClient(nc, { prefix, maxInFlight: 4 * BATCH, batching: false })),
);
await batched.execute(Add, input);
await unbatched.execute(Add, input);

function batchOf(bus: CommandBus): Promise<number[]> {
  const calls: Promise<number>[] = [];
  for (let i = 0; i < BATCH; i++) calls.push(bus.execute(Add, input));
  return Promise.all(calls);
}

// Both processes' JIT warm up on traffic, and mitata runs few iterations of a 1000-call row: without this
// the first row would measure a serving node still running unoptimized code.
for (const [bus, rounds] of [
  [batched, 40],
  [unbatched, 4],
] as const) {
  for (let r = 0; r < rounds; r++) await batchOf(bus);
}

const names = {
  oneLocal: 'in-process pool: execute → worker',
  oneBatched: 'remote over NATS, batching: execute → serving node’s worker',
  oneUnbatched: 'remote over NATS, batching off: execute → serving node’s worker',
  manyLocal: `in-process pool: ${BATCH} × execute`,
  manyBatched: `remote over NATS, batching: ${BATCH} × execute`,
  manyUnbatched: `remote over NATS, batching off: ${BATCH} × execute`,
};

group('1 in flight: one call awaited (round-trip latency)', () => {
  bench(names.oneLocal, async () => {
    do_not_optimize(await local.execute(Add, input));
  }).baseline(true);
  bench(names.oneBatched, async () => {
    do_not_optimize(await batched.execute(Add, input));
  });
  bench(names.oneUnbatched, async () => {
    do_not_optimize(await unbatched.execute(Add, input));
  });
});

group(`${BATCH} in flight: ${BATCH} calls at once, awaited together`, () => {
  bench(names.manyLocal, async () => {
    do_not_optimize(await batchOf(local));
  }).baseline(true);
  bench(names.manyBatched, async () => {
    do_not_optimize(await batchOf(batched));
  });
  bench(names.manyUnbatched, async () => {
    do_not_optimize(await batchOf(unbatched));
  });
});

const perSecond = (ns: number): number => BATCH / (ns / 1e9);
const rows = await report('remote', (medians) => ({
  localOneNs: medianOf(medians, names.oneLocal),
  batchedOneNs: medianOf(medians, names.oneBatched),
  unbatchedOneNs: medianOf(medians, names.oneUnbatched),
  localManyPerSec: perSecond(medianOf(medians, names.manyLocal)),
  batchedManyPerSec: perSecond(medianOf(medians, names.manyBatched)),
  unbatchedManyPerSec: perSecond(medianOf(medians, names.manyUnbatched)),
}));
console.log('\nside by side (medians):');
for (const row of rows) {
  const many = row.name.includes(`${BATCH} ×`);
  const perCallUs = row.medianNs / (many ? BATCH : 1) / 1000;
  const perSec = (many ? BATCH : 1) / (row.medianNs / 1e9);
  console.log(
    `  ${row.name.padEnd(66)} ${perCallUs.toFixed(1).padStart(8)} µs/call  ${Math.round(perSec).toLocaleString('en-US').padStart(9)} calls/s`,
  );
}
const { messages, calls } = batchedClient.batchStats;
console.log(
  `  batching: ${messages} batch messages, ${(calls / Math.max(1, messages)).toFixed(0)} calls each on average`,
);

server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
await nc.drain();
await local.close();
await pool.close();
await nats.stop();
