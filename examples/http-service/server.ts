// Serves the HTTP service until SIGINT or SIGTERM, then closes it gracefully and exits 0 by itself.
// `node dist/examples/http-service/server.js --variant pool --port 3000` after `node build.mjs --fast`, then
// `curl -X POST localhost:3000/hash -H 'content-type: application/json' -d '{"userId":1,"password":"correct horse"}'`.
// main.ts starts one of these per variant and loads it.

import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { numberOption, parseCli, usageError } from '../cli.js';
import { createService, type Variant, variants } from './service.js';

const args = parseCli({
  command: 'node dist/examples/http-service/server.js',
  summary: 'The HTTP service alone: POST /hash, GET /users/:id, /health, /metrics, until SIGINT or SIGTERM.',
  options: {
    variant: { type: 'string', value: variants.join('|'), default: 'pool', help: 'where POST /hash runs' },
    threads: {
      type: 'string',
      value: 'n',
      default: String(availableParallelism()),
      help: 'threads of the pool or of piscina, one per core by default',
    },
    nice: {
      type: 'string',
      value: 'n',
      default: '10',
      help: 'nice levels the hashing threads run below the main thread (niceIncrement of the pool or of piscina)',
    },
    host: { type: 'string', value: 'address', default: '127.0.0.1', help: 'address to listen on' },
    port: { type: 'string', value: 'port', default: '0', help: 'port to listen on; 0 = ephemeral' },
    log: { type: 'boolean', help: "fastify's request log on stdout" },
  },
});
if (!(variants as readonly string[]).includes(args.variant)) {
  usageError(`--variant must be one of ${variants.join(', ')}, got ${JSON.stringify(args.variant)}`);
}
const variant = args.variant as Variant;
const threads = numberOption('threads', args.threads, 1, true);
const threadCount = `${threads} thread${threads === 1 ? '' : 's'}`;
const port = numberOption('port', args.port, 0, true);

const niceIncrement = numberOption('nice', args.nice, 0, true);
// Nice values end at 19: the pool refuses more, so the usage error comes here, before anything starts.
if (niceIncrement > 19) usageError(`--nice must be an integer from 0 to 19, got ${args.nice}`);

const started = createService({ variant, threads, niceIncrement, logger: args.log });

// Signals are handled from the start: one that arrives while the service starts closes it once started.
let closing: Promise<void> | undefined;
function onSignal(signal: NodeJS.Signals): void {
  if (closing !== undefined) {
    // A second signal while closing: the impatient way out, for a close that waits on something stuck.
    console.error(`${signal} again: exiting without waiting`);
    process.exit(1);
  }
  closing = started.then(async (service) => {
    await service.close();
    console.log(`${signal}: closed`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  closing.catch((err: unknown) => {
    console.error('shutdown failed', err);
    process.exitCode = 1;
  });
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const service = await started;
if (closing === undefined) {
  await service.app.listen({ host: args.host, port });
  const { address, port: bound } = service.app.server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  // main.ts reads this line for the URL.
  console.log(
    `listening http://${host}:${bound} (variant ${variant}, ${variant === 'inline' ? 'main thread' : threadCount})`,
  );
}
