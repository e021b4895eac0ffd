import { CqrsError } from '@cqrs-pool/core';
import { isToken } from '../wire/subjects.js';

/** A zod schema as far as a sender needs one. */
interface ParsingSchema {
  safeParse(value: unknown): { success: boolean; error?: { issues?: readonly unknown[] } };
}

/** What `send` and `publish` accept: a name, or a definition (`defineCommand`, an event definition). */
export type MessageTarget = string | { readonly name: string; readonly kind?: string };

/**
 * The name of a target, after checking it is one NATS subject token; with a definition, the value is parsed
 * by its schema (`input` for a command, `payload` for an event) so a bad one is refused before it is stored.
 * @throws CqrsError `VALIDATION` (a name that cannot be a subject token, a definition of another kind, a
 * value its schema refuses — `issues` holds the zod issues).
 * @internal
 */
export function checkTarget(
  target: MessageTarget,
  value: unknown,
  kind: 'command' | 'event',
  where: string,
): string {
  const name = typeof target === 'string' ? target : (target as { name?: unknown } | null)?.name;
  if (!isToken(name)) {
    throw new CqrsError(
      'VALIDATION',
      `${where}: the ${kind} name must be one NATS subject token (no dots, spaces, '*' or '>'), got ${JSON.stringify(name)}`,
    );
  }
  if (typeof target === 'string') return name;
  if (target.kind !== undefined && target.kind !== kind) {
    throw new CqrsError('VALIDATION', `${where}: ${name} is a ${target.kind}, not a ${kind}`, {
      handler: name,
    });
  }
  const schema = (target as { input?: unknown; payload?: unknown })[kind === 'command' ? 'input' : 'payload'];
  if (isSchema(schema)) {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new CqrsError(
        'VALIDATION',
        `${name}: the ${kind === 'command' ? 'input' : 'payload'} is invalid`,
        {
          issues: parsed.error?.issues ?? [],
          handler: name,
        },
      );
    }
  }
  return name;
}

function isSchema(value: unknown): value is ParsingSchema {
  return typeof (value as { safeParse?: unknown } | null)?.safeParse === 'function';
}
