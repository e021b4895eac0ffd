/**
 * Setup shared by the event bus tests: a pool with a command bus and an event bus on it, closed after each
 * test (register `closeEventBuses` in `afterEach`), and the failures `onFailure` received.
 */
import type { EventBusOptions, EventFailure, Middleware } from '@cqrs-pool/core';
import { CommandBus, EventBus, WorkerPool } from '@cqrs-pool/core';
import { fixtureUrl } from './fixtureUrl.js';

/** The worker module of the event tests. */
export const eventHandlers = fixtureUrl('eventHandlers');

let open: { pool: WorkerPool; buses: { close(): Promise<void> }[] } | undefined;

export interface EventSetup {
  readonly pool: WorkerPool;
  readonly commands: CommandBus;
  readonly events: EventBus;
  /** What `onFailure` received, in the order it was called. */
  readonly deadLetters: EventFailure[];
}

export function eventBuses(
  options: {
    threads?: number;
    maxQueue?: number;
    middleware?: Middleware[];
    bus?: Omit<EventBusOptions, 'pool' | 'middleware' | 'onFailure'>;
  } = {},
): EventSetup {
  const pool = new WorkerPool({ threads: options.threads ?? 2, maxQueue: options.maxQueue ?? 10_000 });
  const deadLetters: EventFailure[] = [];
  const commands = new CommandBus({ pool });
  const events = new EventBus({
    ...options.bus,
    pool,
    middleware: options.middleware ?? [],
    onFailure: (failure) => {
      deadLetters.push(failure);
    },
  });
  open = { pool, buses: [commands, events] };
  return { pool, commands, events, deadLetters };
}

/** Closes what the last `eventBuses()` opened: the buses (draining), then the pool. */
export async function closeEventBuses(): Promise<void> {
  const last = open;
  open = undefined;
  if (last === undefined) return;
  await Promise.all(last.buses.map((bus) => bus.close()));
  await last.pool.close();
}
