/**
 * The HTTP service under load, side by side in one run: the fastify service of `examples/http-service`
 * (`POST /hash`, ~5 ms of scrypt per request) with the hash in cqrs-pool's threads, in raw piscina's threads
 * (`piscina.run` from the route, the same thread count, the body validated with the same zod schema) and on
 * the main thread (`inline`), each variant its own server process. The service runs its hashing threads 10
 * nice levels below the main thread (`niceIncrement`, either pool); both pools also run at 0, to show
 * what that priority does to /health. autocannon loads `POST /hash` from 32 connections (each sends its
 * next request when its answer arrives) while `GET /health` is probed at a steady rate, as a load balancer
 * would. Rounds, variants interleaved in an order that rotates each round, each server started afresh;
 * medians of rounds. The load generator runs in this process, on the same cores: what a service on a small
 * machine sees.
 *
 *   node build.mjs --fast && node dist/bench/httpService.bench.js [--rounds 3] [--seconds 5]
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type LoadResult, loadTest, warmUp } from '../examples/http-service/loadTest.js';
import { startServer, stopServer } from '../examples/http-service/serverProcess.js';
import type { Variant } from '../examples/http-service/service.js';
import { median, rotated, writeResult } from './report.js';

const arg = (flag: string, fallback: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 3);
const seconds = arg('--seconds', 5);
const threads = availableParallelism();
const connections = 32;
const probeRate = 50;
const server = fileURLToPath(new URL('../examples/http-service/server.js', import.meta.url));

const contenders: { key: string; variant: Variant; args?: string[]; name: string; results: LoadResult[] }[] =
  [
    { key: 'ours', variant: 'pool', name: `cqrs-pool, ${threads} threads`, results: [] },
    { key: 'piscina', variant: 'piscina', name: `raw piscina.run, ${threads} threads`, results: [] },
    {
      key: 'oursNice0',
      variant: 'pool',
      args: ['--nice', '0'],
      name: `cqrs-pool, ${threads} threads, niceIncrement 0`,
      results: [],
    },
    {
      key: 'piscinaNice0',
      variant: 'piscina',
      args: ['--nice', '0'],
      name: `raw piscina.run, ${threads} threads, niceIncrement 0`,
      results: [],
    },
    { key: 'inline', variant: 'inline', name: 'inline (main thread)', results: [] },
  ];
for (let round = 1; round <= rounds; round++) {
  for (const contender of rotated(contenders, round)) {
    const { child, url } = await startServer(server, contender.variant, threads, contender.args);
    try {
      await warmUp(url, connections);
      contender.results.push(await loadTest(url, { duration: seconds, connections, probeRate }));
    } finally {
      await stopServer(child);
    }
  }
  console.log(`round ${round}/${rounds} done`);
}

/** Median over rounds of one figure of a contender (by index or key). */
const figure = (which: number | string, pick: (r: LoadResult) => number): number =>
  median(
    (
      (typeof which === 'number'
        ? contenders[which]
        : contenders.find((c) => c.key === which)) as (typeof contenders)[number]
    ).results.map(pick),
  );
const okPerSec = (r: LoadResult) => r.hash.okPerSecond;
const hashP99 = (r: LoadResult) => r.hash.p99;
const healthP50 = (r: LoadResult) => r.health.p50;
const healthP99 = (r: LoadResult) => r.health.p99;
const failures = contenders.reduce(
  (n, c) => n + c.results.reduce((m, r) => m + r.hash.non2xx + r.hash.errors + r.health.failed, 0),
  0,
);
const ms = (v: number): string => (Number.isNaN(v) ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
for (const [i, c] of contenders.entries()) {
  console.log(
    `${c.name}: /hash ${figure(i, okPerSec).toFixed(0)}/s p99 ${ms(figure(i, hashP99))} ms, ` +
      `/health p99 ${ms(figure(i, healthP99))} ms`,
  );
}
writeResult({
  name: 'httpService',
  tables: [
    {
      title: `HTTP service: POST /hash (~5 ms scrypt) from ${connections} connections, GET /health probed ${probeRate}/s`,
      columns: ['POST /hash runs in', '/hash ok/s', 'vs piscina', '/hash p99', '/health p50', '/health p99'],
      rows: contenders.map((c, i) => [
        c.name,
        figure(i, okPerSec).toFixed(0),
        `×${(figure(i, okPerSec) / figure('piscina', okPerSec)).toFixed(3)}`,
        `${ms(figure(i, hashP99))} ms`,
        `${ms(figure(i, healthP50))} ms`,
        `${ms(figure(i, healthP99))} ms`,
      ]),
      note:
        `Medians of ${rounds} rounds of ${seconds} s per variant, variants interleaved (their order rotating each round), each server its own ` +
        `process started afresh and warmed up; autocannon and the probes run in the benchmark's process on the ` +
        `same ${availableParallelism()} cores. Non-2xx answers, errors and failed probes over the run: ${failures}. ` +
        `Rounds (/hash ok/s): ${contenders.map((c) => `${c.key} ${c.results.map((r) => r.hash.okPerSecond.toFixed(0)).join(', ')}`).join('; ')}.`,
    },
  ],
  charts: [
    {
      title: `HTTP service: /hash answered per second (${threads} threads)`,
      unit: 'requests/s',
      bars: contenders.map((c, i) => ({
        label: c.name,
        value: figure(i, okPerSec),
        ...(i === 0 ? { ours: true } : {}),
      })),
    },
  ],
  values: {
    oursOkPerSec: figure('ours', okPerSec),
    oursNice0OkPerSec: figure('oursNice0', okPerSec),
    piscinaOkPerSec: figure('piscina', okPerSec),
    inlineOkPerSec: figure('inline', okPerSec),
    oursHealthP99Ms: figure('ours', healthP99),
    oursNice0HealthP99Ms: figure('oursNice0', healthP99),
    piscinaHealthP99Ms: figure('piscina', healthP99),
    piscinaNice0HealthP99Ms: figure('piscinaNice0', healthP99),
    piscinaNice0OkPerSec: figure('piscinaNice0', okPerSec),
    inlineHealthP99Ms: figure('inline', healthP99),
    oursHashP99Ms: figure('ours', hashP99),
    piscinaHashP99Ms: figure('piscina', hashP99),
    failures,
  },
});
