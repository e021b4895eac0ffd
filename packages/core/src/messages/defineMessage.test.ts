import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isCqrsError } from '../errors/CqrsError.js';
import { defineCommand } from './defineCommand.js';
import { defineQuery } from './defineQuery.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

describe('defineCommand / defineQuery', () => {
  it('carry name, kind, input and output schemas', () => {
    const input = z.object({ userId: z.number() });
    const output = z.object({ id: z.number() });
    const command = defineCommand('CreateUser', { input, output });
    expect(command).toEqual({ name: 'CreateUser', kind: 'command', input, output });
    const query = defineQuery('GetUser', { input });
    expect(query.kind).toBe('query');
    expect(query.input).toBe(input);
    expect(query.output).toBeUndefined();
  });

  it('are frozen', () => {
    const command = defineCommand('Frozen', { input: z.object({}) });
    expect(Object.isFrozen(command)).toBe(true);
    expect(() => {
      (command as { name: string }).name = 'Other';
    }).toThrow(TypeError);
  });

  it('refuse an empty or blank name with INVALID_REGISTRATION', () => {
    expect(
      isCqrsError(
        thrown(() => defineCommand('', { input: z.object({}) })),
        'INVALID_REGISTRATION',
      ),
    ).toBe(true);
    expect(
      isCqrsError(
        thrown(() => defineQuery('  ', { input: z.object({}) })),
        'INVALID_REGISTRATION',
      ),
    ).toBe(true);
    expect(
      isCqrsError(
        thrown(() => defineQuery(42 as unknown as string, { input: z.object({}) })),
        'INVALID_REGISTRATION',
      ),
    ).toBe(true);
  });

  it('refuse a missing or non-zod input schema and a non-zod output schema with INVALID_REGISTRATION', () => {
    const noInput = thrown(() => defineCommand('A', {} as never));
    expect(isCqrsError(noInput, 'INVALID_REGISTRATION')).toBe(true);
    expect((noInput as Error).message).toContain('schemas.input');
    expect(
      isCqrsError(
        thrown(() => defineCommand('A', undefined as never)),
        'INVALID_REGISTRATION',
      ),
    ).toBe(true);
    expect(
      isCqrsError(
        thrown(() => defineCommand('A', { input: { parse() {} } as never })),
        'INVALID_REGISTRATION',
      ),
    ).toBe(true);
    const badOutput = thrown(() => defineQuery('B', { input: z.object({}), output: 'string' as never }));
    expect(isCqrsError(badOutput, 'INVALID_REGISTRATION')).toBe(true);
    expect((badOutput as Error).message).toContain('schemas.output');
  });
});
