import { CqrsError } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { isPermanentFailure } from './isPermanentFailure.js';
import { permanent } from './permanent.js';
import { retryDelay } from './retryDelay.js';

describe('isPermanentFailure', () => {
  it('takes the input, registration and message codes as permanent, the rest as transient', () => {
    for (const code of [
      'VALIDATION',
      'HANDLER_NOT_FOUND',
      'NOT_CLONEABLE',
      'INVALID_REGISTRATION',
    ] as const) {
      expect(isPermanentFailure(new CqrsError(code, 'x')), code).toBe(true);
    }
    for (const code of [
      'TIMEOUT',
      'WORKER_CRASHED',
      'OVERLOADED',
      'UNAVAILABLE',
      'CIRCUIT_OPEN',
      'ABORTED',
      'CLOSED',
    ] as const) {
      expect(isPermanentFailure(new CqrsError(code, 'x')), code).toBe(false);
    }
  });

  it('takes HANDLER_FAILED as permanent only when the handler marked its error', () => {
    expect(isPermanentFailure(new CqrsError('HANDLER_FAILED', 'x', { cause: new Error('flaky') }))).toBe(
      false,
    );
    const marked = permanent(Object.assign(new Error('closed account'), { code: 'CLOSED_ACCOUNT' }));
    expect(marked.permanent).toBe(true);
    expect(isPermanentFailure(new CqrsError('HANDLER_FAILED', 'x', { cause: marked }))).toBe(true);
    // As a pool thread hands it over: a plain object with its own fields.
    expect(
      isPermanentFailure(new CqrsError('HANDLER_FAILED', 'x', { cause: { ...marked, message: 'm' } })),
    ).toBe(true);
    expect(isPermanentFailure(permanent(new Error('plain')))).toBe(true);
    expect(isPermanentFailure('a string')).toBe(false);
  });
});

describe('retryDelay', () => {
  it('doubles from baseDelayMs up to maxDelayMs, within 20 % either way', () => {
    const low = () => 0;
    const high = () => 0.999_999;
    expect(retryDelay(1, undefined, 100, 1_000, low)).toBe(80);
    expect(retryDelay(1, undefined, 100, 1_000, high)).toBe(120);
    expect(retryDelay(3, undefined, 100, 1_000, low)).toBe(320);
    expect(retryDelay(10, undefined, 100, 1_000, high)).toBe(1_200);
    expect(retryDelay(10_000, undefined, 100, 1_000, low)).toBe(800);
  });

  it("never retries sooner than an error's retryAfterMs", () => {
    const err = new CqrsError('RATE_LIMITED', 'slow down', { retryAfterMs: 5_000 });
    expect(retryDelay(1, err, 100, 1_000, () => 0.5)).toBe(5_000);
  });
});
