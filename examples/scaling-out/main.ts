// Scaling out over NATS: this process dispatches, two serving processes run the handlers in their own
// worker pools. Half-way through, one server is killed (SIGKILL: no goodbye, requests in its hands lost):
// those calls time out at the client and are retried on the survivor, so every call still gets its result.
//
//   npm run demo:nats   (NATS_URL=nats://… to use a running server; else a local nats-server is started)
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isCqrsError, QueryBus, retry } from '@cqrs-pool/core';
import { RemoteClient, remote } from '@cqrs-pool/nats';
import { connect } from '@nats-io/transport-node';
import { localNats } from './localNatsServer.js';
import { ScoreDocument } from './messages.js';

const TOTAL = 600;
const CONCURRENCY = 24;
const KILL_AFTER = 200;

const found = await localNats();
if (!found.ok) {
  console.error(`scaling-out demo: ${found.reason}. Install nats-server or set NATS_URL.`);
  process.exit(2);
}
const nats = found.nats;
console.log(`NATS at ${nats.url}${nats.started ? ' (started for this demo)' : ''}`);
// Subjects of this run only, so that several runs (or test files) can share one NATS server.
const prefix = `demo${process.pid}`;

function startServer(id: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./node.js', import.meta.url))], {
    env: { ...process.env, NATS_URL: nats.url, NODE_ID: id, CQRS_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (line: string) => {
      process.stdout.write(`  [${id}] ${line}`);
      if (line.includes('ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${id} exited (${code}) before it was ready`)));
  });
}

const servers = new Map<string, ChildProcess>();
for (const [id, child] of await Promise.all(
  ['server-1', 'server-2'].map(async (id) => [id, await startServer(id)] as const),
)) {
  servers.set(id, child);
}

// The dispatcher: an ordinary bus whose handler is remote. A killed server never answers what it had in
// hand, so the client gives up on a request after 1 s and retry() sends it again — to a live server.
const nc = await connect({ servers: nats.url, name: 'dispatcher' });
const client = new RemoteClient(nc, { prefix, timeoutMs: 1_000, maxInFlight: 256 });
const queries = new QueryBus({ middleware: [retry({ maxRetries: 3, baseDelayMs: 20, maxDelayMs: 200 })] });
queries.registerHandler(ScoreDocument, remote(client));

const servedBy = new Map<string, number>();
const failures: string[] = [];
let settled = 0;
let next = 0;
const started = performance.now();
async function dispatchLoop(): Promise<void> {
  while (next < TOTAL) {
    const docId = next++;
    try {
      const result = await queries.execute(ScoreDocument, { docId, rounds: 400 });
      servedBy.set(result.servedBy, (servedBy.get(result.servedBy) ?? 0) + 1);
    } catch (err) {
      failures.push(isCqrsError(err) ? `${err.code}: ${err.message}` : String(err));
    }
    if (++settled === KILL_AFTER) {
      console.log(
        `after ${KILL_AFTER} calls: killing server-2 (SIGKILL), ${client.inFlight} requests in flight`,
      );
      servers.get('server-2')?.kill('SIGKILL');
    }
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, dispatchLoop));
const seconds = (performance.now() - started) / 1000;

// Stop the survivor gracefully; it prints its own counts.
const survivor = servers.get('server-1');
const survivorExit = new Promise((resolve) => survivor?.once('exit', resolve));
survivor?.kill('SIGTERM');
await survivorExit;
await nc.drain();
await nats.stop();

const figures = queries.getMetrics().handlers.ScoreDocument;
console.log(
  `\n${TOTAL} calls in ${seconds.toFixed(2)} s, ${CONCURRENCY} in flight; server-2 killed after ${KILL_AFTER}`,
);
console.log('| served by | calls |');
console.log('| --- | ---: |');
for (const id of ['server-1', 'server-2']) console.log(`| ${id} | ${servedBy.get(id) ?? 0} |`);
console.log(`| failed | ${failures.length} |`);
console.log(
  `caller metrics: ${figures?.executions} attempts (${(figures?.executions ?? 0) - TOTAL} retried), ` +
    `${figures?.failures} failed attempts, p50 ${figures?.latency.p50.toFixed(2)} ms, p99 ${figures?.latency.p99.toFixed(2)} ms`,
);
for (const failure of failures.slice(0, 5)) console.log(`  failed: ${failure}`);
console.log(failures.length === 0 ? 'every call got its result' : `${failures.length} calls failed`);
process.exitCode = failures.length === 0 ? 0 : 1;
