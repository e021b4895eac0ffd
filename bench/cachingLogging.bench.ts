/**
 * What caching and logging cost an inline query on the main thread: a cache hit through `execute` against
 * the uncached call, and logging whose lines are off (the logger's level above them) against no logging and
 * against a pass-through middleware (any middleware costs the bus a continuation; this isolates logging's own
 * check). Also logging that writes only failures (logger at `warn`) and logging that writes every call to a
 * discarding pino.
 *
 *   node build.mjs --fast && node dist/bench/cachingLogging.bench.js [--json]
 */

import { Writable } from 'node:stream';
import type { Middleware } from '@cqrs-pool/core';
import { caching, defineQuery, logging, QueryBus } from '@cqrs-pool/core';
import { bench, do_not_optimize, group } from 'mitata';
import pino from 'pino';
import { z } from 'zod';
// Not yet re-exported by index.ts: bundled from source (their errors and markers work across module copies).
import { medianOf, report } from './report.js';

const GetUser = defineQuery('GetUser', {
  input: z.object({ userId: z.number() }),
  output: z.custom<{ id: number; name: string }>(),
});
const user = { id: 7, name: 'Ada' };
const getUser = (input: { userId: number }) => ({ ...user, id: input.userId });
const input = { userId: 7 };

const sink = new Writable({
  write(_chunk, _encoding, callback) {
    callback();
  },
});

function bus(middleware: Middleware[]): QueryBus {
  const b = new QueryBus({ metrics: true, middleware });
  b.registerHandler(GetUser, getUser);
  return b;
}

const plain = bus([]);
const passThrough = bus([(next) => next]);
const cached = bus([caching({ ttlMs: 60_000 })]);
const silentLogging = bus([logging(pino({ level: 'silent' }, sink))]);
const errorsOnlyLogging = bus([logging(pino({ level: 'warn' }, sink))]);
const infoLogging = bus([logging(pino({ level: 'info' }, sink))]);
await cached.execute(GetUser, input);

group('cached query, execute awaited', () => {
  bench('no middleware (handler runs)', async () => {
    do_not_optimize(await plain.execute(GetUser, input));
  }).baseline(true);
  bench('caching() hit', async () => {
    do_not_optimize(await cached.execute(GetUser, input));
  });
});

group('inline query with logging, execute awaited', () => {
  bench('no middleware', async () => {
    do_not_optimize(await plain.execute(GetUser, input));
  }).baseline(true);
  bench('pass-through middleware', async () => {
    do_not_optimize(await passThrough.execute(GetUser, input));
  });
  bench('logging(), pino silent (lines off)', async () => {
    do_not_optimize(await silentLogging.execute(GetUser, input));
  });
  bench('logging(), pino warn (failures only)', async () => {
    do_not_optimize(await errorsOnlyLogging.execute(GetUser, input));
  });
  bench('logging(), pino info (every call written)', async () => {
    do_not_optimize(await infoLogging.execute(GetUser, input));
  });
});

await report('cachingLogging', (rows) => ({ cachedHitNs: medianOf(rows, 'caching() hit') }), [
  'Cached query hit, whole `execute`',
  'Logging, one inline query',
]);
const figures = cached.getMetrics().handlers.GetUser;
console.log(`\ncaching bus counted ${figures?.executions} executions (hits included)`);
