import { CommandBus, inWorker, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { Block, Control } from './fixtures/messages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionAtOnce, rejectionWith } from './rejectionWith.js';

let pool: WorkerPool | undefined;
let control: Int32Array | undefined;

afterEach(async () => {
  if (control !== undefined) releaseAll(control);
  control = undefined;
  await pool?.close();
  pool = undefined;
});

async function saturated(withSignals: boolean) {
  const p = new WorkerPool({ threads: 1, maxQueue: 1 });
  pool = p;
  const commands = new CommandBus({ pool: p });
  commands.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'));
  await commands.ready();
  const c = newControl();
  control = c;
  const options = () => (withSignals ? { signal: new AbortController().signal } : {});
  const running = commands.execute(Block, { control: c }, options());
  await waitForStarts(c, 1);
  const queued = commands.execute(Block, { control: c }, options());
  await waitUntil(() => p.queueSize === 1, HANG_MS, 'the second call to be queued');
  return { pool: p, commands, control: c, running, queued, options };
}

describe('a full queue', () => {
  it('refuses one call more with OVERLOADED at once, and nothing of it is queued or run', async () => {
    const { pool, commands, control, running, queued, options } = await saturated(false);
    // Refused before the event loop turned: it waited for nothing (the thread stays blocked until released).
    const err = await rejectionAtOnce(commands.execute(Block, { control }, options()), 'OVERLOADED');
    expect(err.handler).toBe('Block');
    expect(pool.queueSize).toBe(1);
    releaseAll(control);
    await expect(running).resolves.toBe('released');
    await expect(queued).resolves.toBe('released');
    expect(Atomics.load(control, Control.started)).toBe(2);
    expect(pool.inFlight).toBe(0);
  });

  it('refuses with OVERLOADED also when the calls carry an abort signal', async () => {
    const { pool, commands, control, running, queued, options } = await saturated(true);
    await rejectionWith(commands.execute(Block, { control }, options()), 'OVERLOADED');
    expect(pool.queueSize).toBe(1);
    releaseAll(control);
    await expect(running).resolves.toBe('released');
    await expect(queued).resolves.toBe('released');
    expect(Atomics.load(control, Control.started)).toBe(2);
  });

  it('accepts calls again once the queue has room', async () => {
    const { commands, control, running, queued } = await saturated(false);
    await rejectionWith(commands.execute(Block, { control }), 'OVERLOADED');
    releaseAll(control);
    await Promise.all([running, queued]);
    await expect(commands.execute(Block, { control })).resolves.toBe('released');
  });
});
