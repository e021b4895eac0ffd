import { describe, expect, it, vi } from 'vitest';
import { CqrsError, isCqrsError } from './CqrsError.js';

describe('CqrsError', () => {
  it('is an Error named CqrsError carrying its code, message and details', () => {
    const cause = new Error('root');
    const err = new CqrsError('CIRCUIT_OPEN', 'open', { retryAfterMs: 100, handler: 'GetUser', cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('CqrsError');
    expect(err.code).toBe('CIRCUIT_OPEN');
    expect(err.message).toBe('open');
    expect(err.retryAfterMs).toBe(100);
    expect(err.handler).toBe('GetUser');
    expect(err.cause).toBe(cause);
    expect(String(err.stack)).toMatch(/^CqrsError: open/);
  });
});

describe('isCqrsError', () => {
  it('is true for a CqrsError, with no code or with its own code, and false for another code', () => {
    const err = new CqrsError('TIMEOUT', 'late');
    expect(isCqrsError(err)).toBe(true);
    expect(isCqrsError(err, 'TIMEOUT')).toBe(true);
    expect(isCqrsError(err, 'ABORTED')).toBe(false);
  });

  it('recognises an error made by another copy of the module, where instanceof fails', async () => {
    vi.resetModules();
    const copy = await import('./CqrsError.js');
    expect(copy.CqrsError).not.toBe(CqrsError);
    const foreign = new copy.CqrsError('OVERLOADED', 'full');
    expect(foreign instanceof CqrsError).toBe(false);
    expect(isCqrsError(foreign)).toBe(true);
    expect(isCqrsError(foreign, 'OVERLOADED')).toBe(true);
    expect(copy.isCqrsError(new CqrsError('CLOSED', 'closed'), 'CLOSED')).toBe(true);
  });

  it('is false for lookalikes: an Error with a code, a plain object, a structured clone, a bad brand or code', () => {
    const brand = Symbol.for('cqrs-pool.CqrsError');
    expect(isCqrsError(Object.assign(new Error('x'), { code: 'TIMEOUT' }))).toBe(false);
    expect(isCqrsError({ name: 'CqrsError', code: 'TIMEOUT', message: 'x' })).toBe(false);
    // Structured clone keeps neither the class nor its brand getter.
    expect(isCqrsError(structuredClone(new CqrsError('TIMEOUT', 'x')))).toBe(false);
    expect(isCqrsError({ [brand]: 'yes', code: 'TIMEOUT' })).toBe(false);
    expect(isCqrsError({ [brand]: true, code: 'NOT_A_CODE' })).toBe(false);
    expect(isCqrsError({ [brand]: true })).toBe(false);
    expect(isCqrsError(Symbol.for('cqrs-pool.CqrsError'))).toBe(false);
    expect(isCqrsError('TIMEOUT')).toBe(false);
    expect(isCqrsError(null)).toBe(false);
    expect(isCqrsError(undefined)).toBe(false);
  });
});
