import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isCqrsError } from '../errors/CqrsError.js';
import { defineCommand } from '../messages/defineCommand.js';
import { CommandBus } from './CommandBus.js';

const Deposit = defineCommand('Deposit', { input: z.object({ accountId: z.unknown() }) });
const Ping = defineCommand('Ping', { input: z.object({}) });

function bus() {
  const commands = new CommandBus();
  commands.registerHandler(Deposit, () => undefined, {
    orderingKey: (input) => input.accountId as string,
  });
  commands.registerHandler(Ping, () => undefined);
  return commands;
}

describe('orderingKeyFor', () => {
  it("returns the handler's orderingKey for the input and metadata, without running anything", async () => {
    const commands = bus();
    expect(commands.orderingKeyFor('Deposit', { accountId: 'a-1' })).toBe('a-1');
    expect(commands.orderingKeyFor('Deposit', { accountId: 7 }, { tenant: 't' })).toBe(7);
    expect(commands.orderingKeyFor('Deposit', { accountId: undefined })).toBeUndefined();
    expect(commands.orderingKeyFor('Ping', {})).toBeUndefined();
    expect(commands.pending).toBe(0);
    await commands.close();
  });

  it('refuses an unknown name with HANDLER_NOT_FOUND and a bad key with VALIDATION', () => {
    const commands = bus();
    expect(() => commands.orderingKeyFor('Nope', {})).toThrow(
      expect.objectContaining({ code: 'HANDLER_NOT_FOUND' }),
    );
    let err: unknown;
    try {
      commands.orderingKeyFor('Deposit', { accountId: { nested: true } });
    } catch (e) {
      err = e;
    }
    expect(isCqrsError(err, 'VALIDATION')).toBe(true);
    expect(() => commands.orderingKeyFor('Deposit', null)).toThrow(
      expect.objectContaining({ code: 'VALIDATION' }),
    );
  });
});
