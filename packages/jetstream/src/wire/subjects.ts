import type { ResolvedOptions } from '../config/DurableOptions.js';

/** The partition token of commands without an ordering key. */
export const UNORDERED = 'u';

const token = /^[^\s.*>]+$/;

/** True when `name` can be one NATS subject token (no dots, spaces, `*` or `>`). */
export function isToken(name: unknown): name is string {
  return typeof name === 'string' && token.test(name);
}

/** Where each kind of durable message is stored, from the prefix. @internal */
export function subjects(o: Pick<ResolvedOptions, 'prefix'>) {
  const p = o.prefix;
  return {
    /** Everything the commands stream stores. */
    commands: `${p}.dcmd.>`,
    command: (partition: number | typeof UNORDERED, name: string) => `${p}.dcmd.${partition}.${name}`,
    partitionFilter: (partition: number | typeof UNORDERED) => `${p}.dcmd.${partition}.*`,
    events: `${p}.devt.>`,
    event: (name: string) => `${p}.devt.${name}`,
    deadLetters: `${p}.dead.>`,
    deadCommand: (name: string) => `${p}.dead.cmd.${name}`,
    deadEvent: (group: string, name: string) => `${p}.dead.evt.${group}.${name}`,
    /** Where a serving node announces an outcome (core NATS, not stored): waiters listen there. */
    outcome: (completionKey: string) => `${p}.dres.${completionKey}`,
    /** Parses a stored command's subject: its partition token and name, or undefined. */
    parseCommand(subject: string): { partition: string; name: string } | undefined {
      const rest = subject.startsWith(`${p}.dcmd.`) ? subject.slice(p.length + 6).split('.') : [];
      return rest.length === 2 && rest[0] && rest[1] ? { partition: rest[0], name: rest[1] } : undefined;
    },
    /** Parses a stored event's subject: its name, or undefined. */
    parseEvent(subject: string): string | undefined {
      const rest = subject.startsWith(`${p}.devt.`) ? subject.slice(p.length + 6) : '';
      return isToken(rest) ? rest : undefined;
    },
  };
}

/** @internal */
export type Subjects = ReturnType<typeof subjects>;
