import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { Definition, StreamQueryDefinition } from './Definition.js';

/** The schemas passed to {@link defineStreamQuery}. */
export interface StreamQuerySchemas<I extends z.ZodType, T extends z.ZodType> {
  /** Validates and types the input. */
  input: I;
  /** Types each item; validated too when `validation({ output: true })` is in the chain. `z.custom<T>()` for a type only. */
  item: T;
}

/**
 * Defines a streaming query: a named read whose handler yields items (an async generator) that reach the
 * caller while it runs. Register it on a `QueryBus` like any query; read it with `queries.stream(def, input)`,
 * an `AsyncIterable` of its items. `execute` refuses it with `INVALID_REGISTRATION`.
 * @throws CqrsError `INVALID_REGISTRATION` for an empty name or a missing schema.
 */
export function defineStreamQuery<N extends string, I extends z.ZodType, T extends z.ZodType>(
  name: N,
  schemas: StreamQuerySchemas<I, T>,
): StreamQueryDefinition<N, I, T> {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new CqrsError('INVALID_REGISTRATION', 'defineStreamQuery: name must be a non-empty string');
  }
  if (typeof schemas?.input?.safeParse !== 'function') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `defineStreamQuery('${name}'): schemas.input must be a zod schema`,
    );
  }
  if (typeof schemas.item?.safeParse !== 'function') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `defineStreamQuery('${name}'): schemas.item must be a zod schema`,
    );
  }
  return Object.freeze({
    name,
    kind: 'query' as const,
    input: schemas.input,
    output: undefined,
    item: schemas.item,
    stream: true as const,
  });
}

/** True when `definition` is a streaming query's (made by {@link defineStreamQuery}). @internal */
export function isStreamQuery(definition: Definition | undefined): definition is StreamQueryDefinition {
  return (definition as { stream?: unknown } | undefined)?.stream === true;
}
