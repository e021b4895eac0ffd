/**
 * `healthSnapshot` on a real pool: JSON-ready figures, `degraded` for an open circuit and for a queue above
 * 80 % of maxQueue, `closed` once shutting down. Runs against the built package and fixtures.
 */
import {
  CommandBus,
  circuitBreaker,
  defineQuery,
  healthSnapshot,
  inWorker,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { Block } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const Flaky = defineQuery('Flaky', { input: z.object({}) });

let pool: WorkerPool | undefined;
let control: Int32Array | undefined;

afterEach(async () => {
  if (control !== undefined) releaseAll(control);
  control = undefined;
  await pool?.close();
  pool = undefined;
});

describe('healthSnapshot', () => {
  it('reports ok with the pool figures and every handler circuit, as plain JSON', async () => {
    const p = new WorkerPool({ threads: 1, maxQueue: 10 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    const queries = new QueryBus({ pool: p, metrics: false });
    commands.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'));
    queries.registerHandler(Flaky, () => 'fine', { middleware: [circuitBreaker()] });
    await commands.ready();
    const health = healthSnapshot({ pool: p, buses: [commands, queries] });
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
    expect(health).toEqual({
      status: 'ok',
      pool: { threads: 1, queueSize: 0, maxQueue: 10, utilization: expect.any(Number), inFlight: 0 },
      circuits: { 'command:Block': 'closed', 'query:Flaky': 'closed' },
      handlers: 2,
    });
  });

  it('is degraded while a circuit is open, even on a bus without metrics', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const queries = new QueryBus({ pool: p, metrics: false });
    queries.registerHandler(
      Flaky,
      () => {
        throw new Error('down');
      },
      { middleware: [circuitBreaker({ failureThreshold: 2, resetAfterMs: 60_000 })] },
    );
    for (let i = 0; i < 2; i++) await rejectionWith(queries.execute(Flaky, {}), 'HANDLER_FAILED');
    await rejectionWith(queries.execute(Flaky, {}), 'CIRCUIT_OPEN');
    const health = healthSnapshot({ pool: p, buses: [queries] });
    expect(health.status).toBe('degraded');
    expect(health.circuits).toEqual({ 'query:Flaky': 'open' });
  });

  it('is degraded while the queue is above 80 % of maxQueue, and ok again once it drains', async () => {
    const p = new WorkerPool({ threads: 1, maxQueue: 5 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    commands.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'));
    const c = newControl();
    control = c;
    const running = [commands.execute(Block, { control: c })];
    await waitForStarts(c, 1);
    for (let i = 0; i < 4; i++) running.push(commands.execute(Block, { control: c }));
    await waitUntil(() => p.queueSize === 4, HANG_MS, 'four queued calls');
    expect(healthSnapshot({ pool: p, buses: [commands] }).status).toBe('ok');
    running.push(commands.execute(Block, { control: c }));
    await waitUntil(() => p.queueSize === 5, HANG_MS, 'five queued calls');
    const health = healthSnapshot({ pool: p, buses: [commands] });
    expect(health.status).toBe('degraded');
    // In flight counts the queued calls too: one running, five waiting.
    expect(health.pool).toMatchObject({ queueSize: 5, maxQueue: 5, inFlight: 6 });
    releaseAll(c);
    await Promise.all(running);
    expect(healthSnapshot({ pool: p, buses: [commands] }).status).toBe('ok');
  });

  it('is closed once a bus or the pool is closing', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    await commands.close();
    expect(healthSnapshot({ pool: p, buses: [commands] }).status).toBe('closed');
    const other = new WorkerPool({ threads: 1 });
    await other.close();
    expect(healthSnapshot({ pool: other }).status).toBe('closed');
  });

  it('refuses a missing pool or a ratio outside 0…1', () => {
    expect(() => healthSnapshot({} as never)).toThrow(/options.pool/);
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    expect(() => healthSnapshot({ pool: p, queueDegradedRatio: 2 })).toThrow(/queueDegradedRatio/);
  });
});
