/**
 * Durable commands over JetStream against request/reply over `@cqrs-pool/nats`, side by side in one run:
 * the `add` worker handler (bench/handlers/add.ts) on a serving node in a process of its own (one-thread
 * pool, bench/durableServer.ts), reached both ways: 300 commands one at a time (the round trip), then 2,000
 * with 200 in flight (throughput), each waiting for its result. A command's end-to-end latency runs from the
 * call to its result — for a durable command: stored at PubAck, claimed and run by the node, completion
 * recorded, acknowledged, the outcome announced to the waiting sender. Rounds: one warm-up, then three;
 * throughput is the median round's, p50/p99 over the three rounds' calls.
 *
 *   durable execute, unkeyed   send + wait, the unordered consumer
 *   durable execute, keyed     the same with an ordering key: 16 partitions, one in flight per partition
 *   durable send only          send (PubAck): how fast commands are accepted, none awaited
 *   request/reply              remote() over NATS, the baseline
 *
 *   node build.mjs --fast && node dist/bench/durable.bench.js
 *   (starts its own nats-server with JetStream; needs nats-server on the PATH or in /usr/sbin)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CommandBus, defineCommand } from '@cqrs-pool/core';
import type { DurableMessaging } from '@cqrs-pool/jetstream';
import { durableMessaging } from '@cqrs-pool/jetstream';
import { RemoteClient, remote } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { z } from 'zod';
import { startJetStreamServer } from '../packages/jetstream/test/jetStreamServer.js';
import { benchDurableOptions } from './durableOptions.js';
import { median, quantile, writeResult } from './report.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const COMMANDS = 2_000;
const IN_FLIGHT = 200;
/** One at a time: the round trip alone, no queueing. */
const SEQUENTIAL = 300;
const ROUNDS = 3;

let server: Awaited<ReturnType<typeof startJetStreamServer>>;
try {
  server = await startJetStreamServer();
} catch (err) {
  console.log(`skipped: ${(err as Error).message}`);
  writeResult({ name: 'durable', tables: [], values: {}, skipped: (err as Error).message });
  process.exit(0);
}
const nc = await connect({ servers: server.url, noAsyncTraces: true });
const durable = await durableMessaging(nc, benchDurableOptions);
const node = spawn(process.execPath, [fileURLToPath(new URL('./durableServer.js', import.meta.url))], {
  env: { ...process.env, NATS_URL: server.url },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve, reject) => {
  node.stdout?.on('data', (chunk: Buffer) => {
    if (String(chunk).includes('ready')) resolve();
  });
  node.once('exit', (code) => reject(new Error(`the serving node exited (${code}) before it was ready`)));
});
const remoteBus = new CommandBus({ metrics: false });
remoteBus.registerHandler(Add, remote(new RemoteClient(nc, { prefix: 'bench', maxInFlight: 4 * IN_FLIGHT })));

interface Round {
  seconds: number;
  latenciesMs: number[];
}

/** Runs `count` calls, `inFlight` at a time; each call's latency from its start to its settling. */
async function round(call: (i: number) => Promise<unknown>, count: number, inFlight: number): Promise<Round> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const t = performance.now();
      await call(i);
      latenciesMs.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: (performance.now() - started) / 1000, latenciesMs };
}

let run = 0;
const replyCall = (): Promise<unknown> => remoteBus.execute(Add, { a: 1, b: 2 });
const unkeyed = (i: number): Promise<unknown> =>
  durable.execute(Add, { a: 1, b: 2 }, { messageId: `u-${run}-${i}` });
const keyed = (i: number): Promise<unknown> =>
  durable.execute(Add, { a: 1, b: 2 }, { messageId: `k-${run}-${i}`, orderingKey: `key-${i % 200}` });
const storeOnly = (i: number): Promise<unknown> =>
  durable.send(Add, { a: 1, b: 2 }, { messageId: `s-${run}-${i}` });
const scenarios: { name: string; call: (i: number) => Promise<unknown>; count: number; inFlight: number }[] =
  [
    { name: 'request/reply over NATS, 1 in flight', call: replyCall, count: SEQUENTIAL, inFlight: 1 },
    { name: 'durable execute, unkeyed, 1 in flight', call: unkeyed, count: SEQUENTIAL, inFlight: 1 },
    {
      name: `request/reply over NATS, ${IN_FLIGHT} in flight`,
      call: replyCall,
      count: COMMANDS,
      inFlight: IN_FLIGHT,
    },
    {
      name: `durable execute, unkeyed, ${IN_FLIGHT} in flight`,
      call: unkeyed,
      count: COMMANDS,
      inFlight: IN_FLIGHT,
    },
    {
      name: `durable execute, 200 keys / 16 partitions, ${IN_FLIGHT} in flight`,
      call: keyed,
      count: COMMANDS,
      inFlight: IN_FLIGHT,
    },
    {
      name: `durable send only (stored at PubAck), ${IN_FLIGHT} in flight`,
      call: storeOnly,
      count: COMMANDS,
      inFlight: IN_FLIGHT,
    },
  ];

const rows: string[][] = [];
const values: Record<string, number> = {};
for (const [index, scenario] of scenarios.entries()) {
  const rounds: Round[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    run++;
    const result = await round(scenario.call, scenario.count, scenario.inFlight);
    if (r > 0) rounds.push(result); // the first is a warm-up
    if (scenario.call === storeOnly) await drained(durable);
  }
  const perSecond = median(rounds.map((r) => scenario.count / r.seconds));
  const all = rounds.flatMap((r) => r.latenciesMs);
  const p50 = quantile(all, 0.5);
  const p99 = quantile(all, 0.99);
  rows.push([scenario.name, Math.round(perSecond).toLocaleString('en-US'), p50.toFixed(2), p99.toFixed(2)]);
  values[`scenario${index}PerSec`] = perSecond;
  values[`scenario${index}P50Ms`] = p50;
  values[`scenario${index}P99Ms`] = p99;
  console.log(
    `${scenario.name}: ${Math.round(perSecond)}/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
  );
}

const columns = ['scenario', 'commands/s', 'p50 ms', 'p99 ms'];
console.log(`\n| ${columns.join(' | ')} |\n| --- | ---: | ---: | ---: |`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
writeResult({
  name: 'durable',
  tables: [
    {
      title: `Durable commands vs request/reply over NATS (${ROUNDS} rounds after a warm-up)`,
      columns,
      rows,
      note: 'One serving process (one-thread pool, the add handler), a local nats-server with JetStream (file store), the sender in the bench process; all on this machine.',
    },
  ],
  values,
});

node.kill('SIGTERM');
await new Promise((resolve) => node.once('exit', resolve));
await nc.drain();
await server.stop();

/** Waits until the commands stored by a store-only round have been handled (the queue is empty). */
async function drained(d: DurableMessaging): Promise<void> {
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const jsm = await jetstreamManager(nc);
  while ((await jsm.streams.info(d.options.names.commands)).state.messages > 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
