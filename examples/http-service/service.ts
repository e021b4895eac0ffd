// A fastify service embedding cqrs-pool: the main use of the library. POST /hash is CPU-heavy (scrypt, ~5 ms),
// GET /users/:id a cached read, GET /health and GET /metrics what an orchestrator and Prometheus scrape.
// `createService` builds it in one of three variants that differ in POST /hash only, so they can be measured
// side by side (main.ts): `inline` hashes on the main thread (an inline handler, what a service does without
// a pool), `pool` in cqrs-pool's threads (a worker handler), `piscina` in raw piscina's threads, called from
// the route (the baseline: the same threads without the buses).
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  CommandBus,
  CqrsError,
  caching,
  circuitBreaker,
  healthSnapshot,
  inWorker,
  QueryBus,
  type RateLimitOptions,
  rateLimit,
  timeout,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Piscina } from 'piscina';
import { Counter, Registry } from 'prom-client';
import { hashPassword } from './hash.js';
import { httpErrorOf } from './httpError.js';
import { GetUser, HashPassword, type User } from './messages.js';

export const variants = ['inline', 'pool', 'piscina'] as const;
export type Variant = (typeof variants)[number];

export interface ServiceOptions {
  variant: Variant;
  /** Threads of the pool (`pool`) or of piscina (`piscina`); default: the available parallelism. */
  threads?: number;
  /** Hash calls that may wait for a thread; one more is refused (429). Default 1000. */
  maxQueue?: number;
  /**
   * How many nice levels the hashing threads run below the main thread (`niceIncrement` of the pool, or of
   * piscina), so `/health` and the routing get a core at once while the threads keep every core busy;
   * default 10.
   */
  niceIncrement?: number;
  /** Per-call timeout of the command bus (504 when it fires); default 5000 ms. */
  timeoutMs?: number;
  /** A rate limit on POST /hash (429 with Retry-After over it); default none. */
  rateLimit?: RateLimitOptions;
  /** Fastify's request log (pino, to stdout); default off. */
  logger?: boolean;
}

export interface Service {
  /** Not listening yet: call `app.listen({ host, port })`, or `app.inject()` in a test. */
  app: FastifyInstance;
  /** Stops the server (in-flight requests finish), then the buses (draining), then the threads. */
  close(): Promise<void>;
}

const users = new Map<number, User>();
for (let id = 1; id <= 1_000; id++) {
  users.set(id, { id, username: `user${id}`, email: `user${id}@example.com` });
}

/** Builds the service in `options.variant`; resolves once every worker handler has loaded. */
export async function createService(options: ServiceOptions): Promise<Service> {
  const { variant, maxQueue = 1_000, timeoutMs = 5_000, niceIncrement = 10 } = options;
  const threads = options.threads ?? availableParallelism();
  // Only the `pool` variant runs handlers in the pool; the others keep one for their buses (GetUser, /health,
  // /metrics are the same code in all three) that never starts a thread (minThreads 0, nothing to run).
  const pool =
    variant === 'pool'
      ? new WorkerPool({ threads, maxQueue, niceIncrement })
      : new WorkerPool({ threads: 1, minThreads: 0, maxQueue });
  const commands = new CommandBus({
    pool,
    middleware: [
      validation(),
      ...(options.rateLimit === undefined ? [] : [rateLimit(options.rateLimit)]),
      circuitBreaker({ failureThreshold: 5, resetAfterMs: 5_000 }),
      timeout(timeoutMs),
    ],
  });
  const queries = new QueryBus({ pool, middleware: [validation(), caching({ ttlMs: 10_000, max: 10_000 })] });

  const registry = new Registry();
  const userStoreReads = new Counter({
    name: 'user_store_reads_total',
    help: 'Reads of the user store: GetUser calls the cache did not answer',
    registers: [registry],
  });
  queries.registerHandler(GetUser, async ({ userId }) => {
    userStoreReads.inc();
    // Stands in for a database round trip.
    await new Promise((resolve) => setTimeout(resolve, 2));
    return users.get(userId) ?? null;
  });

  let piscina: Piscina | undefined;
  if (variant === 'inline') commands.registerHandler(HashPassword, (input) => hashPassword(input));
  else if (variant === 'pool') {
    commands.registerHandler(
      HashPassword,
      inWorker(new URL('./handlers.js', import.meta.url), 'hashPassword'),
    );
  } else {
    piscina = new Piscina({
      filename: fileURLToPath(new URL('./piscinaWorker.js', import.meta.url)),
      minThreads: threads,
      maxThreads: threads,
      maxQueue,
      niceIncrement,
    });
  }
  await Promise.all([commands.ready(), queries.ready()]);
  const unregisterMetrics = registerCqrsMetrics({ registry, buses: [commands, queries], pool });

  const hash = async (body: unknown, signal: AbortSignal, correlationId: string): Promise<unknown> => {
    if (piscina === undefined) {
      // By name: the body is unchecked JSON, and the bus's validation() is what checks it (400 below).
      return commands.execute(HashPassword.name, body, { signal, metadata: { correlationId } });
    }
    const parsed = HashPassword.input.safeParse(body);
    if (!parsed.success) {
      throw new CqrsError('VALIDATION', 'HashPassword: invalid input', { issues: parsed.error.issues });
    }
    try {
      return await piscina.run(parsed.data, { signal });
    } catch (err) {
      if ((err as Error).message === 'Task queue is at limit') {
        throw new CqrsError('OVERLOADED', 'HashPassword: the queue is full', { cause: err });
      }
      throw err;
    }
  };

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 16 * 1024 });
  app.setErrorHandler((err, request, reply) => {
    const answer = httpErrorOf(err);
    // Not a bus error (a body that is not JSON, too large, …): fastify's own answer.
    if (answer === undefined) throw err;
    if (answer.status >= 500 && answer.status !== 503) request.log.error({ err }, 'request failed');
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  app.post('/hash', (request, reply) => hash(request.body, clientGone(reply), request.id));

  app.get<{ Params: { id: string } }>('/users/:id', async (request, reply) => {
    // Number('abc') is NaN, which GetUser's schema refuses: a 400 with the issue, like any bad input.
    const user = await queries.execute(GetUser, { userId: Number(request.params.id) });
    if (user === null) return reply.code(404).send({ error: 'NOT_FOUND', message: 'no such user' });
    return user;
  });

  app.get('/health', (_request, reply) => {
    const health = healthSnapshot({ pool, buses: [commands, queries] });
    return reply.code(health.status === 'ok' ? 200 : 503).send(health);
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );

  return {
    app,
    async close() {
      await app.close();
      unregisterMetrics();
      await Promise.all([commands.close(), queries.close()]);
      await pool.close();
      await piscina?.destroy();
    },
  };
}

/** Aborts when the client goes away before its answer: a queued hash nobody will read is not run. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('the client closed the connection'));
  });
  return controller.signal;
}
