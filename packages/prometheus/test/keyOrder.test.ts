/**
 * Per-key order series: calls waiting for their key (gauge) and the key wait (histogram), for handlers
 * registered with `orderingKey` only.
 */
import { CommandBus, defineCommand } from '@cqrs-pool/core';
import { registerCqrsMetrics } from '@cqrs-pool/prometheus';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseExposition } from './scrape.js';

const Deposit = defineCommand('Deposit', {
  input: z.object({ account: z.string(), amount: z.number() }),
  output: z.number(),
});
const Ping = defineCommand('Ping', { input: z.object({}) });

describe('registerCqrsMetrics and per-key order', () => {
  it('exports calls waiting for their key and the key-wait histogram of keyed handlers only', async () => {
    const commands = new CommandBus();
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let balance = 0;
    commands.registerHandler(
      Deposit,
      async ({ amount }) => {
        await gate;
        balance += amount;
        return balance;
      },
      { orderingKey: (input) => input.account },
    );
    commands.registerHandler(Ping, () => undefined);
    const registry = new Registry();
    const unregister = registerCqrsMetrics({ registry, buses: [commands] });
    const calls = [1, 2, 3].map((amount) => commands.execute(Deposit, { account: 'a-1', amount }));
    await commands.execute(Ping, {});

    const during = parseExposition(await registry.metrics());
    expect(during.value('cqrs_key_waiting', { handler: 'Deposit', kind: 'command' })).toBe(2);
    expect(during.all('cqrs_key_waiting', { handler: 'Ping' })).toEqual([]);
    // The first call had its key at once: one wait recorded so far, of zero.
    expect(during.value('cqrs_key_wait_seconds_count', { handler: 'Deposit' })).toBe(1);

    release();
    expect(await Promise.all(calls)).toEqual([1, 3, 6]);
    const after = parseExposition(await registry.metrics());
    expect(after.value('cqrs_key_waiting', { handler: 'Deposit' })).toBe(0);
    expect(after.value('cqrs_key_wait_seconds_count', { handler: 'Deposit' })).toBe(3);
    expect(after.value('cqrs_key_wait_seconds_bucket', { handler: 'Deposit', le: '+Inf' })).toBe(3);
    expect(after.all('cqrs_key_wait_seconds_count', { handler: 'Ping' })).toEqual([]);
    unregister();
  });
});
