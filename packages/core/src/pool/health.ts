import type { CommandBus } from '../bus/CommandBus.js';
import type { EventBus } from '../bus/EventBus.js';
import type { QueryBus } from '../bus/QueryBus.js';
import { CqrsError } from '../errors/CqrsError.js';
import type { CircuitState } from '../shared/breakerState.js';
import type { WorkerPool } from './WorkerPool.js';

/** Options of {@link healthSnapshot}. */
export interface HealthOptions {
  /** The pool the buses run worker handlers in. */
  pool: WorkerPool;
  /** The buses whose handlers' (and event subscribers') circuits are reported. Default none. */
  buses?: readonly (CommandBus | QueryBus | EventBus)[];
  /** Queue fill (`queueSize / maxQueue`) above which the status is `degraded`; default 0.8. */
  queueDegradedRatio?: number;
}

/** What {@link healthSnapshot} returns: plain data, ready for `JSON.stringify`. */
export interface HealthSnapshot {
  /**
   * `closed` once the pool or any of the buses was closed (shutting down: new calls get `CLOSED`);
   * else `degraded` when a circuit is open or the queue is above `queueDegradedRatio` of `maxQueue`;
   * else `ok`.
   */
  status: 'ok' | 'degraded' | 'closed';
  pool: {
    /** Threads alive now. */
    threads: number;
    /** Calls waiting for a thread. */
    queueSize: number;
    /** The pool's `maxQueue`. */
    maxQueue: number;
    /** The share of the pool's thread capacity busy over the last 10 s or so, 0…1 (`pool.utilization`). */
    utilization: number;
    /** Calls handed to the pool and not settled: running on a thread or waiting in its queue. */
    inFlight: number;
  };
  /**
   * Circuit state per handler, keyed `command:<name>` / `query:<name>` / `event:<event>:<subscriber>`
   * ('closed' when no breaker guards it).
   */
  circuits: Record<string, CircuitState>;
  /** Handlers registered on the buses. */
  handlers: number;
}

/**
 * A health summary of a pool and its buses for a `/health` endpoint, read from the pool and the shared
 * breaker state (no call is made). Cheap: O(handlers), no histogram is read.
 * @throws CqrsError `INVALID_REGISTRATION` when `pool` is not a WorkerPool or `queueDegradedRatio` is not in 0…1.
 */
export function healthSnapshot(options: HealthOptions): HealthSnapshot {
  const { pool, buses = [], queueDegradedRatio = 0.8 } = options;
  if (typeof pool !== 'object' || pool === null || typeof pool.metrics !== 'object') {
    throw new CqrsError('INVALID_REGISTRATION', 'healthSnapshot: options.pool must be a WorkerPool');
  }
  if (!(queueDegradedRatio >= 0 && queueDegradedRatio <= 1)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `healthSnapshot: options.queueDegradedRatio must be between 0 and 1, got ${String(queueDegradedRatio)}`,
    );
  }
  const circuits: Record<string, CircuitState> = {};
  let handlers = 0;
  let anyOpen = false;
  let anyClosed = pool.closed;
  for (const bus of buses) {
    anyClosed ||= bus.closed;
    const { kind, region, handlers: entries } = bus.metricsSources();
    for (const { name, slot } of entries) {
      handlers++;
      const state = region !== undefined && slot >= 0 ? region.circuitState(slot) : 'closed';
      if (state === 'open') anyOpen = true;
      // A handler of one name on two buses of one kind: the worse state wins.
      const key = `${kind}:${name}`;
      if (circuits[key] === undefined || state === 'open') circuits[key] = state;
    }
  }
  const queueSize = pool.queueSize;
  const maxQueue = pool.maxQueue;
  // With maxQueue 0 nothing ever waits: the queue cannot make the pool degraded.
  const queueFull = maxQueue > 0 && queueSize > queueDegradedRatio * maxQueue;
  return {
    status: anyClosed ? 'closed' : anyOpen || queueFull ? 'degraded' : 'ok',
    pool: {
      threads: pool.threads,
      queueSize,
      maxQueue,
      utilization: pool.utilization,
      inFlight: pool.inFlight,
    },
    circuits,
    handlers,
  };
}
