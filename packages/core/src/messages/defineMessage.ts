import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { Definition, DefinitionSchemas, MessageKind } from './Definition.js';

/** @internal Shared by defineCommand and defineQuery: checks the arguments and freezes the definition. */
export function defineMessage<
  K extends MessageKind,
  N extends string,
  I extends z.ZodType,
  O extends z.ZodType | undefined,
>(kind: K, name: N, schemas: DefinitionSchemas<I, O>): Definition<K, N, I, O> {
  const what = definerOf(kind);
  if (typeof name !== 'string' || name.trim() === '') {
    throw new CqrsError('INVALID_REGISTRATION', `${what}: name must be a non-empty string`);
  }
  if (typeof schemas?.input?.safeParse !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', `${what}('${name}'): schemas.input must be a zod schema`);
  }
  if (schemas.output !== undefined && typeof schemas.output.safeParse !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', `${what}('${name}'): schemas.output must be a zod schema`);
  }
  return Object.freeze({ name, kind, input: schemas.input, output: schemas.output as O });
}

/** The function that makes definitions of `kind`, for messages. @internal */
export function definerOf(kind: MessageKind): string {
  return kind === 'command' ? 'defineCommand' : kind === 'query' ? 'defineQuery' : 'defineEvent';
}
