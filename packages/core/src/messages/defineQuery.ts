import type { z } from 'zod';
import type { DefinitionSchemas, QueryDefinition } from './Definition.js';
import { defineMessage } from './defineMessage.js';

/**
 * Defines a query: a named message that reads state, with a zod schema for its input and, optionally, one
 * for its result. `QueryBus.execute` infers both types from it.
 * @throws CqrsError `INVALID_REGISTRATION` for an empty name or a missing schema.
 */
export function defineQuery<
  N extends string,
  I extends z.ZodType,
  O extends z.ZodType | undefined = undefined,
>(name: N, schemas: DefinitionSchemas<I, O>): QueryDefinition<N, I, O> {
  return defineMessage('query', name, schemas);
}
