import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import type { EventDefinition } from './Definition.js';

/** The schema passed to {@link defineEvent}. */
export interface EventSchemas<P extends z.ZodType> {
  /** Validates and types the payload, once per publish. */
  payload: P;
}

/**
 * Defines an event: a named fact that happened, with a zod schema for its payload. `EventBus.publish`
 * infers the payload type from it and validates the payload once, before any subscriber runs.
 * @throws CqrsError `INVALID_REGISTRATION` for an empty name or a missing schema.
 */
export function defineEvent<N extends string, P extends z.ZodType>(
  name: N,
  schemas: EventSchemas<P>,
): EventDefinition<N, P> {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new CqrsError('INVALID_REGISTRATION', 'defineEvent: name must be a non-empty string');
  }
  if (typeof schemas?.payload?.safeParse !== 'function') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `defineEvent('${name}'): schemas.payload must be a zod schema`,
    );
  }
  const payload = schemas.payload;
  return Object.freeze({ name, kind: 'event' as const, payload, input: payload, output: undefined });
}
