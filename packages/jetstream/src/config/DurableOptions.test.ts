import { isCqrsError } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from './DurableOptions.js';

describe('resolveOptions', () => {
  it('fills the defaults and names the streams after the prefix', () => {
    const o = resolveOptions({ prefix: 'acme.billing' });
    expect(o.names).toEqual({
      commands: 'ACME_BILLING_COMMANDS',
      events: 'ACME_BILLING_EVENTS',
      deadLetters: 'ACME_BILLING_DEAD_LETTERS',
      completions: 'ACME_BILLING_COMPLETIONS',
    });
    expect(o).toMatchObject({
      partitions: 16,
      replicas: 1,
      ackWaitMs: 30_000,
      maxDeliver: 5,
      commandMaxAgeMs: 0,
    });
  });

  it('refuses a bad option with INVALID_REGISTRATION naming it', () => {
    for (const [options, words] of [
      [{ replicas: 0 }, 'options.replicas'],
      [{ names: { commands: 'A.B' } }, 'options.names.commands'],
      [{ names: { events: 'SAME', commands: 'SAME' } }, 'four different names'],
      [{ storage: 'disk' }, 'options.storage'],
      [{ maxDeliver: 1.5 }, 'options.maxDeliver'],
      [{ eventMaxAgeMs: 1_000 }, 'options.eventMaxAgeMs'],
      [{ ackWaitMs: 60_000, maxDeliver: 1_000 }, 'options.completionTtlMs'],
    ] as const) {
      let err: unknown;
      try {
        resolveOptions(options as never);
      } catch (e) {
        err = e;
      }
      expect(isCqrsError(err, 'INVALID_REGISTRATION'), words).toBe(true);
      expect((err as Error).message).toContain(words);
    }
  });
});
