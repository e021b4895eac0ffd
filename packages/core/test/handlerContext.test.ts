import {
  CommandBus,
  CqrsError,
  defineCommand,
  inWorker,
  isCqrsError,
  QueryBus,
  WorkerPool,
} from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WhoAmI } from './fixtures/contextMessages.js';
import { fixtureUrl } from './fixtureUrl.js';

const Forward = defineCommand('Forward', { input: z.object({}) });
const Other = defineCommand('Other', { input: z.object({}) });

describe('ctx.name and ctx.kind', () => {
  const pool = new WorkerPool({ threads: 1 });
  afterAll(() => pool.close());

  it('name the message an inline handler runs for, so one function can serve several', async () => {
    const bus = new CommandBus();
    const forwarder = (_input: unknown, ctx: { name: string; kind: string }) => `${ctx.kind}:${ctx.name}`;
    bus.registerHandler(Forward, forwarder);
    bus.registerHandler(Other, forwarder);
    expect(await bus.execute(Forward, {})).toBe('command:Forward');
    expect(await bus.execute('Other', {})).toBe('command:Other');
  });

  it('name the message a worker handler runs for', async () => {
    const queries = new QueryBus({ pool });
    queries.registerHandler(WhoAmI, inWorker(fixtureUrl('contextHandlers'), 'whoAmI'));
    expect(await queries.execute(WhoAmI, {})).toEqual({ name: 'WhoAmI', kind: 'query' });
  });
});

describe('a forwarded error', () => {
  it('reaches the caller as it is, where any other thrown error becomes HANDLER_FAILED', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Forward, () => {
      throw markForwarded(new CqrsError('VALIDATION', 'bad on the far side', { issues: [] }));
    });
    bus.registerHandler(Other, () => {
      throw new CqrsError('VALIDATION', 'thrown by the handler itself');
    });
    const forwarded = await bus.execute(Forward, {}).catch((err: unknown) => err);
    expect(isCqrsError(forwarded, 'VALIDATION')).toBe(true);
    expect((forwarded as Error).message).toBe('bad on the far side');
    const own = await bus.execute(Other, {}).catch((err: unknown) => err);
    expect(isCqrsError(own, 'HANDLER_FAILED')).toBe(true);
    expect(bus.getMetrics().handlers.Forward).toMatchObject({ executions: 1, failures: 1 });
  });
});
