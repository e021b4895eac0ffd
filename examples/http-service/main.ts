// Embedding cqrs-pool in an HTTP service, measured: starts the fastify service of service.ts in each variant
// in turn (its own process, as a service would run), loads POST /hash (~5 ms of scrypt) with autocannon while
// probing GET /health, and prints the figures side by side. The point: with the hash on the main thread
// (`inline`), a cheap /health waits behind every queued hash; in a pool it does not.
// Run it with `npm run demo:http` (or `node dist/examples/http-service/main.js` after `node build.mjs --fast`).
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { numberOption, parseCli, usageError } from '../cli.js';
import { type LoadResult, loadTest, warmUp } from './loadTest.js';
import { startServer, stopServer } from './serverProcess.js';
import { type Variant, variants } from './service.js';

const args = parseCli({
  command: 'node dist/examples/http-service/main.js',
  summary:
    'Starts the HTTP service in each variant (inline: the hash on the main thread; pool: cqrs-pool; piscina:\n' +
    'raw piscina), loads POST /hash with autocannon while probing GET /health, and prints a table.',
  options: {
    duration: { type: 'string', value: 'seconds', default: '5', help: 'load time per variant' },
    connections: {
      type: 'string',
      value: 'n',
      default: '32',
      help: 'concurrent connections sending POST /hash',
    },
    'probe-rate': {
      type: 'string',
      value: 'per second',
      default: '20',
      help: 'GET /health probes per second',
    },
    threads: {
      type: 'string',
      value: 'n',
      default: String(availableParallelism()),
      help: 'threads of cqrs-pool and of piscina, one per core by default',
    },
    variants: {
      type: 'string',
      value: 'list',
      default: variants.join(','),
      help: 'which variants to run, in order, comma-separated',
    },
  },
});
const duration = numberOption('duration', args.duration, 1);
const connections = numberOption('connections', args.connections, 1, true);
const probeRate = numberOption('probe-rate', args['probe-rate'], 1);
const threads = numberOption('threads', args.threads, 1, true);
const threadCount = `${threads} thread${threads === 1 ? '' : 's'}`;
const chosen = args.variants.split(',').map((v) => v.trim());
for (const v of chosen) {
  if (!(variants as readonly string[]).includes(v)) {
    usageError(`--variants: unknown variant ${JSON.stringify(v)} (known: ${variants.join(', ')})`);
  }
}

const server = fileURLToPath(new URL('./server.js', import.meta.url));

const where: Record<Variant, string> = {
  inline: 'main thread (inline handler)',
  pool: `cqrs-pool, ${threadCount}`,
  piscina: `raw piscina, ${threadCount}`,
};

console.log(
  `POST /hash (scrypt, ~5 ms CPU) from ${connections} connections for ${duration} s per variant, ` +
    `GET /health probed ${probeRate}/s meanwhile; ${availableParallelism()} cores`,
);
const results: [Variant, LoadResult][] = [];
for (const variant of chosen as Variant[]) {
  const { child, url } = await startServer(server, variant, threads);
  try {
    await warmUp(url, connections);
    console.log(`${variant}: ${url} loaded…`);
    results.push([variant, await loadTest(url, { duration, connections, probeRate })]);
  } finally {
    await stopServer(child);
  }
}

const ms = (v: number): string => (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const header = [
  'variant',
  'POST /hash runs on',
  '/hash ok/s',
  'p50 ms',
  'p99 ms',
  'non-2xx',
  '/health p50 ms',
  'p99 ms',
  'max ms',
];
const rows = results.map(([variant, r]) => [
  variant,
  where[variant],
  r.hash.okPerSecond.toFixed(0),
  ms(r.hash.p50),
  ms(r.hash.p99),
  String(r.hash.non2xx + r.hash.errors),
  ms(r.health.p50),
  ms(r.health.p99),
  ms(r.health.max),
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
console.log('');
for (const row of [header, ...rows]) {
  console.log(
    row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
  );
}
const failedProbes = results.reduce((n, [, r]) => n + r.health.failed, 0);
if (failedProbes > 0) console.log(`\n${failedProbes} /health probes failed`);
