// Graceful shutdown: a service that serves a steady trickle of calls until SIGINT or SIGTERM, then stops
// taking new work, lets every call in flight finish (or fail with a clear code), closes the buses and then the
// pool, and exits 0 by itself — no process.exit(), so a handle left open would show as a hang.
// Run it with `node dist/examples/shutdown/main.js` after `node build.mjs --fast`, then press Ctrl-C.
import { CommandBus, inWorker, isCqrsError, QueryBus, validation, WorkerPool } from '@cqrs-pool/core';
import { parseCli } from '../cli.js';
import { Digest, Health } from './handlers.js';

parseCli({
  command: 'node dist/examples/shutdown/main.js',
  summary: 'Serves a steady trickle of calls until SIGINT or SIGTERM, then drains them and exits 0.',
  options: {},
});

const pool = new WorkerPool({ threads: 2, maxQueue: 1_000 });
const commands = new CommandBus({ pool, middleware: [validation()] });
const queries = new QueryBus({ pool });
commands.registerHandler(Digest, inWorker(new URL('./handlers.js', import.meta.url), 'digest'));
queries.registerHandler(Health, () => 'ok');
await Promise.all([commands.ready(), queries.ready()]);

let completed = 0;
const failed: Record<string, number> = {};
let seed = 0;
// The traffic: a few calls every 5 ms, as requests would arrive.
const traffic = setInterval(() => {
  for (let i = 0; i < 4; i++) {
    const call =
      i === 0 ? queries.execute(Health, {}) : commands.execute(Digest, { seed: seed++, rounds: 20_000 });
    call.then(
      () => completed++,
      (err: unknown) => {
        const code = isCqrsError(err) ? err.code : 'UNKNOWN';
        failed[code] = (failed[code] ?? 0) + 1;
      },
    );
  }
}, 5);
console.log(`ready (pid ${process.pid}); send SIGINT or SIGTERM to stop`);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(traffic);
  const inFlight = commands.pending + queries.pending;
  const started = performance.now();
  // Buses first: they refuse new calls (CLOSED) and wait for theirs; then the pool stops its threads.
  await Promise.all([commands.close(), queries.close()]);
  await pool.close();
  const failures = Object.entries(failed)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  console.log(
    `${signal}: drained ${inFlight} in flight in ${Math.round(performance.now() - started)} ms; ` +
      `${completed} completed, ${failures === '' ? 'none failed' : `failed: ${failures}`}; pool threads ${pool.threads}`,
  );
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
function onSignal(signal: NodeJS.Signals): void {
  shutdown(signal).catch((err: unknown) => {
    console.error('shutdown failed', err);
    process.exitCode = 1;
  });
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
