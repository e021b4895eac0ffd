import type { MessageKind } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';

/** The subject prefix when none is given: handlers are served on `cqrs.cmd.<Name>` and `cqrs.qry.<Name>`. */
export const DEFAULT_PREFIX = 'cqrs';

// NATS subject tokens are separated by dots; whitespace and the wildcards `*` and `>` have meanings of their
// own. A prefix may hold several tokens (`acme.billing`); a message name must be a single token.
const token = /^[^\s.*>]+$/;

/** `<prefix>.cmd.<name>` or `<prefix>.qry.<name>`. @throws CqrsError `INVALID_REGISTRATION` for a name that is not one subject token. */
export function subjectFor(prefix: string, kind: MessageKind, name: string): string {
  if (!token.test(name)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `'${name}' cannot be a NATS subject token (no dots, spaces, '*' or '>'); pass options.subject`,
      { handler: name },
    );
  }
  return `${prefix}.${kind === 'command' ? 'cmd' : 'qry'}.${name}`;
}

/** Checks a subject prefix option. @throws CqrsError `INVALID_REGISTRATION` naming `where`. */
export function checkPrefix(prefix: unknown, where: string): string {
  if (typeof prefix !== 'string' || prefix === '' || !prefix.split('.').every((t) => token.test(t))) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where} must be dot-separated NATS subject tokens without spaces or wildcards, got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}
