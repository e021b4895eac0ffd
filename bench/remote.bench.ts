/**
 * A call over NATS against the same call in this process's pool, side by side in one run: the `add` worker
 * handler (bench/handlers/add.ts) executed through `execute`, awaited one at a time (round-trip latency),
 * and 1000 at once (throughput: 1000 calls per iteration). The remote side is a serving node in a process of
 * its own (bench/remoteServer.ts) with the same one-thread pool; the baseline is a one-thread pool here.
 * Both processes share this machine, so the remote rows include the NATS server's and the other process's
 * CPU — on separate machines the hop costs latency but the work spreads.
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
import { report } from './report.js';

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
const remoteBus = new CommandBus({ metrics: false });
remoteBus.registerHandler(Add, remote(new RemoteClient(nc, { prefix, maxInFlight: 4 * BATCH })));
await remoteBus.execute(Add, input);

function batchOf(bus: CommandBus): Promise<number[]> {
  const calls: Promise<number>[] = [];
  for (let i = 0; i < BATCH; i++) calls.push(bus.execute(Add, input));
  return Promise.all(calls);
}

group('1 in flight: one call awaited (round-trip latency)', () => {
  bench('in-process pool: execute → worker', async () => {
    do_not_optimize(await local.execute(Add, input));
  }).baseline(true);
  bench('remote over NATS: execute → serving node’s worker', async () => {
    do_not_optimize(await remoteBus.execute(Add, input));
  });
});

group(`${BATCH} in flight: ${BATCH} calls at once, awaited together`, () => {
  bench(`in-process pool: ${BATCH} × execute`, async () => {
    do_not_optimize(await batchOf(local));
  }).baseline(true);
  bench(`remote over NATS: ${BATCH} × execute`, async () => {
    do_not_optimize(await batchOf(remoteBus));
  });
});

const rows = await report('remote');
console.log('\nside by side (medians):');
for (const row of rows) {
  const batch = row.name.includes(`${BATCH} ×`);
  const perCallUs = row.medianNs / (batch ? BATCH : 1) / 1000;
  const perSecond = (batch ? BATCH : 1) / (row.medianNs / 1e9);
  console.log(
    `  ${row.name.padEnd(52)} ${perCallUs.toFixed(1).padStart(8)} µs/call  ${Math.round(perSecond).toLocaleString('en-US').padStart(9)} calls/s`,
  );
}

server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
await nc.drain();
await local.close();
await pool.close();
await nats.stop();
