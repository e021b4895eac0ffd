import { existsSync } from 'node:fs';
import { CommandBus, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newControl, releaseAll, waitForStarts } from './control.js';
import { Block, Describe, Square } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';
import { runScenario } from './runScenario.js';

const handlers = fixtureUrl('handlers');
let pool: WorkerPool | undefined;
let control: Int32Array | undefined;

afterEach(async () => {
  if (control !== undefined) releaseAll(control);
  control = undefined;
  await pool?.close();
  pool = undefined;
});

describe('close', () => {
  it('lets in-flight worker calls complete, refuses new ones with CLOSED, then the pool closes', async () => {
    // Two threads blocked by the in-flight calls, one free for the other bus.
    const p = new WorkerPool({ threads: 3 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    const queries = new QueryBus({ pool: p });
    commands.registerHandler(Block, inWorker(handlers, 'block'));
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    queries.registerHandler(Describe, inWorker(handlers, 'describe'));
    const c = newControl();
    control = c;
    const inFlight = [commands.execute(Block, { control: c }), commands.execute(Block, { control: c })];
    await waitForStarts(c, 2);

    let commandsClosed = false;
    const closingCommands = commands.close().then(() => (commandsClosed = true));
    await rejectionWith(commands.execute(Square, { n: 1 }), 'CLOSED');
    await rejectionWith(commands.execute('Square', { n: 1 }), 'CLOSED');
    // The other bus is still open.
    await expect(
      queries.execute(Describe, {}, { signal: AbortSignal.timeout(15_000) }),
    ).resolves.toMatchObject({
      metadata: {},
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(commandsClosed).toBe(false);

    releaseAll(c);
    await expect(Promise.all(inFlight)).resolves.toEqual(['released', 'released']);
    await closingCommands;
    await queries.close();
    await rejectionWith(queries.execute(Describe, {}), 'CLOSED');
    await expect(p.close()).resolves.toBeUndefined();
    expect(p.closed).toBe(true);
    expect(p.threads).toBe(0);
  });

  it('of the pool refuses worker calls with CLOSED even through an open bus', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    commands.registerHandler(Square, inWorker(handlers, 'square'));
    await expect(commands.execute(Square, { n: 2 })).resolves.toBe(4);
    await p.close();
    await rejectionWith(commands.execute(Square, { n: 2 }), 'CLOSED');
  });

  it('waits for the pool in-flight handlers before stopping its threads', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    commands.registerHandler(Block, inWorker(handlers, 'block'));
    const c = newControl();
    control = c;
    const running = commands.execute(Block, { control: c });
    await waitForStarts(c);
    let poolClosed = false;
    const closing = p.close().then(() => (poolClosed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(poolClosed).toBe(false);
    releaseAll(c);
    await expect(running).resolves.toBe('released');
    await closing;
    expect(p.threads).toBe(0);
  });

  it('is idempotent', async () => {
    const p = new WorkerPool({ threads: 1 });
    pool = p;
    const commands = new CommandBus({ pool: p });
    await Promise.all([commands.close(), commands.close()]);
    await Promise.all([p.close(), p.close()]);
    expect(p.threads).toBe(0);
  });

  it.skipIf(!existsSync('/proc/self/task'))(
    'leaves no thread behind: a program that closes its buses and pool is back to its thread count and exits',
    async () => {
      const { code, stdout, stderr } = await runScenario('closeScenario');
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as Record<string, unknown>;
      expect(report).toMatchObject({
        squares: Array.from({ length: 10 }, (_, n) => n * n),
        last: 144,
        poolThreads: 0,
      });
      // The pool's threads were visible while it ran, and gone after close.
      expect(report.during).toBeGreaterThanOrEqual(Number(report.before) + Number(report.threads));
      expect(report.after).toBe(report.before);
    },
    90_000,
  );
});
