// The production demo: a CPU-heavy service with a realistic middleware stack, /metrics and /health, that
// drives a bounded load against itself, survives a downstream outage (its circuit breaker opens, then closes),
// scrapes its own /metrics, prints a final table, keeps serving /metrics a little longer (so a Prometheus
// server scraping it sees the final counts), shuts down gracefully and exits 0 by itself.
// Run it with `node dist/examples/production-demo/main.js [--duration 10] [--rate 200] [--threads N] [--port 0]
// [--linger 2]` after `node build.mjs --fast` (`--help` lists the options). SIGINT / SIGTERM stop the load
// early, or cut the linger short, and run the same clean ending.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  type CircuitStateChange,
  CommandBus,
  caching,
  circuitBreaker,
  healthSnapshot,
  inWorker,
  isCqrsError,
  logging,
  QueryBus,
  rateLimit,
  retry,
  timeout,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import pino from 'pino';
import { Registry } from 'prom-client';
import { numberOption, parseCli } from '../cli.js';
import { BuildReport, Downstream, HashPassword } from './messages.js';

// ── Options ────────────────────────────────────────────────────────────────────────────────────────────────
const args = parseCli({
  command: 'node dist/examples/production-demo/main.js',
  summary:
    'A CPU-heavy service with /metrics and /health on 127.0.0.1, under a bounded load with a downstream\n' +
    'outage in the middle third; prints a final table, lingers, then shuts down gracefully.',
  options: {
    duration: { type: 'string', value: 'seconds', default: '10', help: 'how long the load runs' },
    rate: { type: 'string', value: 'calls/s', default: '200', help: 'calls issued per second' },
    threads: {
      type: 'string',
      value: 'n',
      default: String(availableParallelism()),
      help: 'pool threads, one per core by default',
    },
    port: {
      type: 'string',
      value: 'port',
      default: '0',
      help: 'port of /metrics and /health; 0 = ephemeral',
    },
    linger: {
      type: 'string',
      value: 'seconds',
      default: '2',
      help: 'how long /metrics keeps serving after the final table, for a last scrape; 0 = none',
    },
  },
});
const threads = numberOption('threads', args.threads, 1, true);
const durationMs = numberOption('duration', args.duration, 1) * 1000;
const rate = numberOption('rate', args.rate, 1);
const port = numberOption('port', args.port, 0, true);
const lingerMs = numberOption('linger', args.linger, 0) * 1000;
/** The client never has more than a second's worth of calls outstanding; beyond that it sheds load. */
const maxOutstanding = Math.max(10, Math.ceil(rate));
// Short enough that the breaker probes (and closes) within the last third of even a short run.
const resetAfterMs = Math.round(Math.min(2_000, Math.max(250, durationMs / 6)));

// ── Service ────────────────────────────────────────────────────────────────────────────────────────────────
const startedAt = performance.now();
const elapsed = (): string => `${((performance.now() - startedAt) / 1000).toFixed(1)}s`;

const logger = pino({ level: 'warn', base: { service: 'production-demo' } }, pino.destination(2));
const logCalls = logging(logger, {
  slowMs: 500,
  // Refusals (CIRCUIT_OPEN, RATE_LIMITED, VALIDATION, …) are expected under an outage: keep them below 'warn'
  // so stderr carries handler failures, timeouts and slow calls, not one line per refused call.
  clientErrorLevel: 'info',
});
const breaker = circuitBreaker({
  failureThreshold: 5,
  resetAfterMs,
  onStateChange: ({ handler, from, to }: CircuitStateChange) =>
    console.log(`[${elapsed()}] breaker ${handler}: ${from} -> ${to}`),
});
// Each handler gets its own budget (key 'handler'), shared by every thread.
const limiter = rateLimit({ limit: Math.ceil(rate), windowMs: 1_000, burst: Math.ceil(rate / 2) });
const bounded = timeout(1_000, { graceMs: 500 });
// Only BuildReport is cached: the key is undefined (uncached) for every other query.
const cache = caching({
  ttlMs: 2_000,
  max: 1_000,
  key: (input, call) => {
    if (call.name !== BuildReport.name) return undefined;
    const { seed, size } = input as { seed: number; size: number };
    return `${seed}:${size}`;
  },
});

// Worker handlers log through ctx.logger: each thread imports threadLogger.js (pino to stderr) once.
const pool = new WorkerPool({
  threads,
  maxQueue: 1_000,
  threadLogger: { module: new URL('./threadLogger.js', import.meta.url) },
});
const commands = new CommandBus({ pool, middleware: [logCalls, validation(), limiter, breaker, bounded] });
const queries = new QueryBus({
  pool,
  middleware: [
    logCalls,
    validation(),
    cache,
    limiter,
    retry({ maxRetries: 2, baseDelayMs: 10, maxDelayMs: 100 }),
    breaker,
    bounded,
  ],
});
const handlers = new URL('./handlers.js', import.meta.url);
commands.registerHandler(HashPassword, inWorker(handlers, 'hashPassword'));
queries.registerHandler(BuildReport, inWorker(handlers, 'buildReport'));
queries.registerHandler(Downstream, inWorker(handlers, 'downstream'));
await Promise.all([commands.ready(), queries.ready()]);

const buses = [commands, queries];
const registry = new Registry();
const unregisterMetrics = registerCqrsMetrics({ registry, buses, pool });
const server = createServer((req, res) => {
  if (req.url === '/metrics') {
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  } else if (req.url === '/health') {
    const health = healthSnapshot({ pool, buses });
    res
      .writeHead(health.status === 'ok' ? 200 : 503, { 'Content-Type': 'application/json' })
      .end(JSON.stringify(health));
  } else res.writeHead(404).end();
});
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve());
});
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`serving ${url}/metrics and ${url}/health`);
console.log(
  `pool ${threads} threads; load ${rate} calls/s for ${durationMs / 1000}s; outage in the middle third; ` +
    `breaker: 5 failures, reset after ${resetAfterMs} ms`,
);

// ── Load ───────────────────────────────────────────────────────────────────────────────────────────────────
// Sampled every 1 ms; each sample is the interval between two timer runs, so 1 ms is subtracted to report the
// delay beyond schedule.
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let issued = 0;
let ok = 0;
let failed = 0;
let shed = 0;
const failures: Record<string, number> = {};
const outstanding = new Set<Promise<void>>();
let outage = false;

function track(call: Promise<unknown>): void {
  const settled = call.then(
    () => {
      ok++;
    },
    (err: unknown) => {
      failed++;
      const code = isCqrsError(err) ? err.code : 'UNKNOWN';
      failures[code] = (failures[code] ?? 0) + 1;
    },
  );
  outstanding.add(settled);
  void settled.finally(() => outstanding.delete(settled));
}

/** One call of the mix: 25 % password hashes, 40 % reports (50 distinct, so the cache hits), 35 % downstream. */
function dispatch(n: number): void {
  const roll = n % 20;
  // A correlation id per request, as a service would take it from the incoming request: every log line of
  // the call carries it, the main thread's (logging middleware) and the worker handler's (ctx.logger).
  const options = { metadata: { correlationId: `req-${n}` } };
  if (roll < 5) {
    track(
      commands.execute(HashPassword, { userId: 1 + (n % 1_000), password: `correct horse ${n}` }, options),
    );
  } else if (roll < 13) {
    track(queries.execute(BuildReport, { seed: n % 50, size: 50_000 }, options));
  } else {
    track(queries.execute(Downstream, { requestId: n, outage }, options));
  }
}

function tick(): void {
  const t = performance.now() - startedAt;
  const nowOutage = t >= durationMs / 3 && t < (2 * durationMs) / 3;
  if (nowOutage !== outage) {
    outage = nowOutage;
    console.log(`[${elapsed()}] outage ${outage ? 'begins: Downstream fails' : 'ends: Downstream recovers'}`);
  }
  const due = Math.min(Math.floor((t / 1000) * rate), Math.floor((durationMs / 1000) * rate));
  while (issued < due) {
    if (outstanding.size >= maxOutstanding) shed++;
    else dispatch(issued);
    issued++;
  }
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
function allHandlers() {
  return [
    ...Object.entries(commands.getMetrics().handlers).map(([name, m]) => ({ name, kind: 'command', m })),
    ...Object.entries(queries.getMetrics().handlers).map(([name, m]) => ({ name, kind: 'query', m })),
  ];
}
let lastIssued = 0;
let lastProgress = startedAt;
/** `[██████░░░░░░░░░░░░░░]  30%`: the share of the run's duration elapsed. */
function bar(): string {
  const share = Math.min(1, (performance.now() - startedAt) / durationMs);
  const width = 20;
  const full = Math.round(share * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${`${Math.round(share * 100)}%`.padStart(4)}`;
}
function progress(): void {
  const now = performance.now();
  const throughput = ((issued - lastIssued) * 1000) / Math.max(1, now - lastProgress);
  lastIssued = issued;
  lastProgress = now;
  const hs = allHandlers();
  const latency = hs.map(({ name, m }) => `${name} ${fmt(m.latency.p50)}/${fmt(m.latency.p99)}`).join(', ');
  const breakers = hs.map(({ name, m }) => `${name}=${m.circuit}`).join(' ');
  console.log(
    `[${elapsed()}] progress ${bar()} calls=${issued} ok=${ok} failed=${failed} shed=${shed} ` +
      `${throughput.toFixed(0)}/s | p50/p99 ms ${latency} | loop delay p99 ${fmt(Math.max(0, loop.percentile(99) / 1e6 - 1))} ms | ${breakers}`,
  );
  loop.reset();
}

const stop = new AbortController();
/** Set while the ending lingers: a signal then cuts the linger short. */
let cutLinger: ((signal: NodeJS.Signals) => void) | undefined;
function onSignal(signal: NodeJS.Signals): void {
  if (cutLinger !== undefined) cutLinger(signal);
  else if (!stop.signal.aborted) {
    console.log(`[${elapsed()}] ${signal}: stopping the load early`);
    stop.abort();
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const driver = setInterval(tick, 5);
const reporter = setInterval(progress, 1_000);
await new Promise<void>((resolve) => {
  const done = setTimeout(resolve, durationMs);
  stop.signal.addEventListener('abort', () => {
    clearTimeout(done);
    resolve();
  });
});
clearInterval(driver);
clearInterval(reporter);
// Let every call in flight settle (the timeout middleware bounds each), then a last progress line.
await Promise.allSettled([...outstanding]);
progress();
loop.disable();

// ── Ending ─────────────────────────────────────────────────────────────────────────────────────────────────
const scraped = await (await fetch(`${url}/metrics`)).text();
console.log(`\nscraped ${url}/metrics (${scraped.length} bytes); a sample:`);
for (const line of scraped.split('\n')) {
  if (line.startsWith('cqrs_executions_total{') || line.startsWith('cqrs_failures_total{')) {
    console.log(`  ${line}`);
  }
}
const health = (await (await fetch(`${url}/health`)).json()) as { status: string };
console.log(`health: ${health.status}`);

const failureCodes = Object.entries(failures)
  .sort(([, a], [, b]) => b - a)
  .map(([code, n]) => `${code} ${n}`)
  .join(', ');
console.log(
  `\nclient: ${issued} calls, ${ok} ok, ${failed} failed${failureCodes === '' ? '' : ` (${failureCodes})`}, ${shed} shed`,
);
console.log('\nFinal metrics (latency in ms; executions include retries and refusals)');
const header = ['handler', 'kind', 'executions', 'failures', 'p50', 'p95', 'p99', 'max', 'circuit'];
const rows = allHandlers().map(({ name, kind, m }) => [
  name,
  kind,
  String(m.executions),
  String(m.failures),
  fmt(m.latency.p50),
  fmt(m.latency.p95),
  fmt(m.latency.p99),
  fmt(m.latency.max),
  m.circuit,
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
for (const row of [header, ...rows]) {
  console.log(
    `  ${row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ')}`,
  );
}

// A Prometheus server scrapes every 15 s or so: stopping right after the table would lose it the last counts.
// Keep serving /metrics (and /health) a little longer; a signal ends the wait at once.
if (lingerMs > 0 && !stop.signal.aborted) {
  console.log(
    `\nlingering ${lingerMs / 1000}s: ${url}/metrics still serves the final counts (--linger 0 skips this)`,
  );
  await new Promise<void>((resolve) => {
    const done = setTimeout(resolve, lingerMs);
    cutLinger = (signal) => {
      console.log(`[${elapsed()}] ${signal}: linger cut short`);
      clearTimeout(done);
      resolve();
    };
  });
  cutLinger = () => {};
}

// Graceful: stop serving, drain the buses, then stop the pool's threads. No process.exit().
unregisterMetrics();
await new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections();
});
await Promise.all([commands.close(), queries.close()]);
await pool.close();
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
console.log('closed buses and pool. Done.');
