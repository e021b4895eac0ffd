import { isCqrsError } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { checkPrefix, subjectFor } from './subjects.js';

describe('subjects', () => {
  it('are <prefix>.cmd.<Name> for commands and <prefix>.qry.<Name> for queries', () => {
    expect(subjectFor('cqrs', 'command', 'CreateUser')).toBe('cqrs.cmd.CreateUser');
    expect(subjectFor('acme.billing', 'query', 'GetInvoice')).toBe('acme.billing.qry.GetInvoice');
  });

  it('refuse a name or prefix that is not valid as subject tokens with INVALID_REGISTRATION', () => {
    for (const name of ['a.b', 'a b', '*', '>', '']) {
      let caught: unknown;
      try {
        subjectFor('cqrs', 'command', name);
      } catch (err) {
        caught = err;
      }
      expect(isCqrsError(caught, 'INVALID_REGISTRATION'), name).toBe(true);
    }
    for (const prefix of ['', 'a..b', 'a.*', 'a >', 3]) expect(() => checkPrefix(prefix, 'p')).toThrow();
    expect(checkPrefix('a.b-c_d', 'p')).toBe('a.b-c_d');
  });
});
