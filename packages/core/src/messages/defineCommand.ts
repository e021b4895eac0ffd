import type { z } from 'zod';
import type { CommandDefinition, DefinitionSchemas } from './Definition.js';
import { defineMessage } from './defineMessage.js';

/**
 * Defines a command: a named message that changes state, with a zod schema for its input and, optionally,
 * one for its result. `CommandBus.execute` infers both types from it.
 * @throws CqrsError `INVALID_REGISTRATION` for an empty name or a missing schema.
 */
export function defineCommand<
  N extends string,
  I extends z.ZodType,
  O extends z.ZodType | undefined = undefined,
>(name: N, schemas: DefinitionSchemas<I, O>): CommandDefinition<N, I, O> {
  return defineMessage('command', name, schemas);
}
