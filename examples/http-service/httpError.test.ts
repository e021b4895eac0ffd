import { CqrsError } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { httpErrorOf } from './httpError.js';

describe('httpErrorOf', () => {
  it('maps VALIDATION to 400 with the issues', () => {
    const issues = [{ code: 'too_small', path: ['userId'], message: 'Too small' }];
    expect(httpErrorOf(new CqrsError('VALIDATION', 'HashPassword: invalid input', { issues }))).toEqual({
      status: 400,
      headers: {},
      body: { error: 'VALIDATION', message: 'HashPassword: invalid input', issues },
    });
  });

  it('maps RATE_LIMITED and OVERLOADED to 429 with Retry-After, rounded up to whole seconds', () => {
    const limited = httpErrorOf(new CqrsError('RATE_LIMITED', 'over the limit', { retryAfterMs: 1_200 }));
    expect(limited).toMatchObject({
      status: 429,
      headers: { 'retry-after': '2' },
      body: { retryAfterMs: 1_200 },
    });
    // A full queue says nothing about when: one second.
    const overloaded = httpErrorOf(new CqrsError('OVERLOADED', 'the queue is full'));
    expect(overloaded).toMatchObject({ status: 429, headers: { 'retry-after': '1' } });
    expect(overloaded?.body).not.toHaveProperty('retryAfterMs');
    // Never 0: a client told "retry after 0" would hammer.
    expect(httpErrorOf(new CqrsError('RATE_LIMITED', 'x', { retryAfterMs: 3 }))?.headers['retry-after']).toBe(
      '1',
    );
  });

  it('maps CIRCUIT_OPEN to 503 with Retry-After, TIMEOUT to 504 without', () => {
    expect(httpErrorOf(new CqrsError('CIRCUIT_OPEN', 'open', { retryAfterMs: 4_001 }))).toMatchObject({
      status: 503,
      headers: { 'retry-after': '5' },
    });
    expect(httpErrorOf(new CqrsError('TIMEOUT', 'HashPassword: timed out after 5000 ms'))).toEqual({
      status: 504,
      headers: {},
      body: { error: 'TIMEOUT', message: 'HashPassword: timed out after 5000 ms' },
    });
  });

  it("answers a handler's failure with 500 and no detail of it", () => {
    const err = new CqrsError('HANDLER_FAILED', 'HashPassword: password table at /srv/db is locked');
    expect(httpErrorOf(err)).toEqual({
      status: 500,
      headers: {},
      body: { error: 'HANDLER_FAILED', message: 'the request failed; see the service logs' },
    });
  });

  it('leaves errors that are not CqrsErrors to the web framework', () => {
    expect(httpErrorOf(new Error('boom'))).toBeUndefined();
    expect(httpErrorOf({ code: 'TIMEOUT', message: 'not a CqrsError' })).toBeUndefined();
    expect(httpErrorOf(undefined)).toBeUndefined();
  });
});
