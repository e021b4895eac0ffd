import { CommandBus } from '../bus/CommandBus.js';
import type { EventBusOptions } from '../bus/EventBus.js';
import { EventBus } from '../bus/EventBus.js';
import { QueryBus } from '../bus/QueryBus.js';
import type { CachingMiddleware } from '../middleware/caching.js';
import { caching } from '../middleware/caching.js';
import { circuitBreaker } from '../middleware/circuitBreaker.js';
import type { Logger } from '../middleware/logging.js';
import { logging } from '../middleware/logging.js';
import type { Middleware } from '../middleware/Middleware.js';
import { rateLimit } from '../middleware/rateLimit.js';
import { retry } from '../middleware/retry.js';
import { timeout } from '../middleware/timeout.js';
import { validation } from '../middleware/validation.js';
import type { WorkerPoolOptions } from '../pool/WorkerPool.js';
import { WorkerPool } from '../pool/WorkerPool.js';
import type { CqrsConfig, CqrsConfigInput } from './configSchema.js';
import { parseConfig } from './loadConfig.js';

/** What {@link createFromConfig} builds. */
export interface CqrsRuntime {
  readonly config: CqrsConfig;
  readonly pool: WorkerPool;
  readonly commands: CommandBus;
  readonly queries: QueryBus;
  /** The event bus, on the same pool (configured by the `event_bus` section). */
  readonly events: EventBus;
  /** The query cache, when caching is on: call `invalidate(def, input?)` after commands that change what queries read. */
  readonly cache: CachingMiddleware | undefined;
  /** Closes the three buses (draining), then the pool. */
  close(): Promise<void>;
}

/** Things a JSON file cannot hold. */
export interface CreateFromConfigOptions {
  /** The logger for `logging` (pino or anything pino-shaped); without one, logging is off whatever the file says. */
  logger?: Logger;
  /** The event bus's `onFailure`: where failed subscribers go (a dead-letter list). */
  onFailure?: EventBusOptions['onFailure'];
}

/**
 * Builds the pool and the three buses, with their middleware, from a configuration (an object shaped like
 * the files in `configs/`, validated here). The middleware order, outermost first, is: logging, validation
 * (not on events: a payload is validated once per publish), caching (queries), rate limit, retry, circuit
 * breaker, timeout — each event subscriber gets its own chain — so invalid calls are refused before they
 * cost anything, cache hits spend no rate budget, each retry attempt is bounded by the timeout and counted
 * by the breaker, and retry stops once the breaker opens (it never retries CIRCUIT_OPEN). Metrics wrap it
 * all (the outermost layer).
 * @throws CqrsError `INVALID_REGISTRATION` naming the first bad field.
 */
export function createFromConfig(
  input: CqrsConfigInput | CqrsConfig,
  options: CreateFromConfigOptions = {},
): CqrsRuntime {
  const config = parseConfig(input);
  const pool = new WorkerPool(poolOptions(config));
  const mw = config.middleware;
  const cache =
    mw.caching?.enabled === true ? caching({ ttlMs: mw.caching.ttl_ms, max: mw.caching.max }) : undefined;

  const chainFor = (kind: 'command' | 'query' | 'event'): Middleware[] => {
    const bus =
      kind === 'command' ? config.command_bus : kind === 'query' ? config.query_bus : config.event_bus;
    const chain: Middleware[] = [];
    if (
      mw.logging.enabled &&
      bus.enable_logging &&
      options.logger !== undefined &&
      mw.logging.level !== 'silent'
    ) {
      chain.push(
        logging(options.logger, {
          level: mw.logging.level,
          includeInput: mw.logging.include_input,
          ...(mw.logging.slow_ms === undefined ? {} : { slowMs: mw.logging.slow_ms }),
        }),
      );
    }
    if (mw.validation.enabled && 'enable_validation' in bus && bus.enable_validation)
      chain.push(validation({ output: mw.validation.output }));
    if (kind === 'query' && cache !== undefined && config.query_bus.enable_caching) chain.push(cache);
    if (mw.rate_limit?.enabled === true && bus.enable_rate_limit) {
      chain.push(
        rateLimit({
          limit: mw.rate_limit.limit,
          windowMs: mw.rate_limit.window_ms,
          key: mw.rate_limit.key,
          ...(mw.rate_limit.burst === undefined ? {} : { burst: mw.rate_limit.burst }),
        }),
      );
    }
    if (mw.retry?.enabled === true && bus.enable_retry) {
      chain.push(
        retry({
          maxRetries: mw.retry.max_retries,
          baseDelayMs: mw.retry.base_delay_ms,
          maxDelayMs: mw.retry.max_delay_ms,
          jitter: mw.retry.jitter,
          onCommands: mw.retry.on_commands,
        }),
      );
    }
    if (mw.circuit_breaker.enabled && bus.enable_circuit_breaker) {
      chain.push(
        circuitBreaker({
          failureThreshold: mw.circuit_breaker.failure_threshold,
          resetAfterMs: mw.circuit_breaker.reset_after_ms,
          halfOpenProbes: mw.circuit_breaker.half_open_probes,
        }),
      );
    }
    if (mw.timeout.enabled && bus.timeout_ms !== undefined) {
      chain.push(
        timeout(bus.timeout_ms, mw.timeout.grace_ms === undefined ? {} : { graceMs: mw.timeout.grace_ms }),
      );
    }
    return chain;
  };

  const commands = new CommandBus({
    pool,
    metrics: config.command_bus.enable_metrics,
    middleware: chainFor('command'),
  });
  const queries = new QueryBus({
    pool,
    metrics: config.query_bus.enable_metrics,
    middleware: chainFor('query'),
  });
  const events = new EventBus({
    pool,
    metrics: config.event_bus.enable_metrics,
    middleware: chainFor('event'),
    strategy: config.event_bus.strategy,
    ...(options.onFailure === undefined ? {} : { onFailure: options.onFailure }),
  });
  return {
    config,
    pool,
    commands,
    queries,
    events,
    cache,
    async close() {
      await Promise.all([commands.close(), queries.close(), events.close()]);
      await pool.close();
    },
  };
}

function poolOptions(config: CqrsConfig): WorkerPoolOptions {
  const p = config.pool;
  const options: WorkerPoolOptions = {};
  if (p.threads !== undefined) options.threads = p.threads;
  if (p.min_threads !== undefined) options.minThreads = p.min_threads;
  if (p.max_queue !== undefined) options.maxQueue = p.max_queue;
  if (p.idle_timeout_ms !== undefined) options.idleTimeoutMs = p.idle_timeout_ms;
  if (p.cancel_grace_ms !== undefined) options.cancelGraceMs = p.cancel_grace_ms;
  if (p.max_old_generation_mb !== undefined)
    options.resourceLimits = { maxOldGenerationSizeMb: p.max_old_generation_mb };
  return options;
}
