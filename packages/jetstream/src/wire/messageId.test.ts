import { isCqrsError } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { checkMessageId, completionKey, MAX_MESSAGE_ID_LENGTH } from './messageId.js';

describe('message ids', () => {
  it('accepts 1-256 printable characters and refuses the rest with VALIDATION', () => {
    expect(checkMessageId('order-1/2 é', 'Op')).toBe('order-1/2 é');
    for (const bad of ['', 'a\nb', 'tab\there', 'x'.repeat(MAX_MESSAGE_ID_LENGTH + 1), 42, undefined]) {
      let err: unknown;
      try {
        checkMessageId(bad, 'Op');
      } catch (e) {
        err = e;
      }
      expect(isCqrsError(err, 'VALIDATION'), String(bad)).toBe(true);
    }
  });

  it('maps ids to bucket keys that never collide: plain ids as they are, others base64url', () => {
    expect(completionKey('order-42')).toBe('m.order-42');
    expect(completionKey('a.b')).toBe(`x.${Buffer.from('a.b').toString('base64url')}`);
    expect(completionKey('a b')).not.toBe(completionKey('a_b'));
    expect(completionKey('m.x')).not.toBe(completionKey('x'));
    expect(completionKey('e1', 'ledger')).toBe('e.ledger.m.e1');
    expect(completionKey(Buffer.from('a.b').toString('base64url'))).not.toBe(completionKey('a.b'));
  });
});
