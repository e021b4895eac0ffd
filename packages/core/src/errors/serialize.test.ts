import { describe, expect, it } from 'vitest';
import type { HostileErrorKind } from '../../test/fixtures/hostileErrors.js';
import { hostileErrorKinds, hostileErrors } from '../../test/fixtures/hostileErrors.js';
import { CqrsError, isCqrsError } from './CqrsError.js';
import type { SerializedError } from './serialize.js';
import { deserializeError, serializeError } from './serialize.js';

/** What a thread boundary does: serialize, structured-clone (as postMessage would), rebuild. */
function acrossThreads(thrown: unknown): unknown {
  return deserializeError(structuredClone(serializeError(thrown)));
}

class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly code = 'E_NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly id: number,
    readonly details: { tags: string[]; at: Date },
  ) {
    super(`${entity} ${id} not found`);
  }
}

describe('serializeError / deserializeError', () => {
  it('keep name, message, stack, code and own fields of an error subclass', () => {
    const at = new Date(1_700_000_000_000);
    const original = new NotFoundError('user', 42, { tags: ['a', 'b'], at });
    const rebuilt = acrossThreads(original) as Error & Record<string, unknown>;
    expect(rebuilt).toBeInstanceOf(Error);
    expect(rebuilt.name).toBe('NotFoundError');
    expect(rebuilt.message).toBe('user 42 not found');
    expect(rebuilt.stack).toBe(original.stack);
    expect(rebuilt.code).toBe('E_NOT_FOUND');
    expect(rebuilt.entity).toBe('user');
    expect(rebuilt.id).toBe(42);
    expect(rebuilt.details).toEqual({ tags: ['a', 'b'], at });
    expect(isCqrsError(rebuilt)).toBe(false);
  });

  it('keep the name of built-in error classes and the cause chain', () => {
    const rebuilt = acrossThreads(new TypeError('outer', { cause: new RangeError('inner') })) as Error;
    expect(rebuilt.name).toBe('TypeError');
    expect(rebuilt.message).toBe('outer');
    expect(rebuilt.cause).toBeInstanceOf(Error);
    expect((rebuilt.cause as Error).name).toBe('RangeError');
    expect((rebuilt.cause as Error).message).toBe('inner');
  });

  it('rebuild a CqrsError as a CqrsError with its code, issues, retryAfterMs, handler and cause', () => {
    const issues = [{ code: 'too_small', path: ['username'], message: 'Too small' }];
    const validation = acrossThreads(
      new CqrsError('VALIDATION', 'bad input', { issues, handler: 'CreateUser' }),
    );
    expect(validation).toBeInstanceOf(CqrsError);
    expect(isCqrsError(validation, 'VALIDATION')).toBe(true);
    expect(validation).toMatchObject({
      name: 'CqrsError',
      message: 'bad input',
      issues,
      handler: 'CreateUser',
    });

    const limited = acrossThreads(
      new CqrsError('RATE_LIMITED', 'slow down', { retryAfterMs: 250, cause: new Error('bucket empty') }),
    ) as CqrsError;
    expect(isCqrsError(limited, 'RATE_LIMITED')).toBe(true);
    expect(limited.retryAfterMs).toBe(250);
    expect((limited.cause as Error).message).toBe('bucket empty');
  });

  it('pass thrown non-Error values through as values', () => {
    expect(acrossThreads('boom')).toBe('boom');
    expect(acrossThreads(42)).toBe(42);
    expect(acrossThreads(undefined)).toBeUndefined();
    expect(acrossThreads(null)).toBeNull();
    expect(acrossThreads({ reason: 'nope', retry: false })).toEqual({ reason: 'nope', retry: false });
  });

  it('describe thrown values that cannot be cloned instead of failing', () => {
    expect(acrossThreads(function named() {})).toBe('[not cloneable: function named]');
    expect(acrossThreads(Symbol('s'))).toBe('[not cloneable: Symbol(s)]');
  });

  it('cut a cyclic cause chain and stay cloneable', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as Error & { cause?: unknown }).cause = b;
    const serialized = serializeError(a);
    let depth = 0;
    for (let s: SerializedError | undefined = serialized; s?.t === 'error'; s = s.cause) depth++;
    expect(depth).toBeGreaterThan(2);
    expect(depth).toBeLessThanOrEqual(10);
    const rebuilt = deserializeError(structuredClone(serialized)) as Error;
    expect(rebuilt.message).toBe('a');
    expect((rebuilt.cause as Error).message).toBe('b');

    const selfish = new Error('self');
    (selfish as Error & { cause?: unknown }).cause = selfish;
    expect(() => structuredClone(serializeError(selfish))).not.toThrow();
  });

  it('keep a field named __proto__ as a plain field without polluting any prototype', () => {
    const err = new Error('x');
    Object.defineProperty(err, '__proto__', {
      value: { polluted: true },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    const rebuilt = acrossThreads(err) as Error & Record<string, unknown>;
    expect(Object.getPrototypeOf(rebuilt)).toBe(Error.prototype);
    expect(rebuilt.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(rebuilt, '__proto__')?.value).toEqual({ polluted: true });
  });

  it('do not let serialized data with a __proto__ field (as from JSON) change the rebuilt prototype', () => {
    const data = {
      t: 'error',
      name: 'Error',
      message: 'from the wire',
      fields: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>,
    } as const satisfies SerializedError;
    const rebuilt = deserializeError(data) as Error & Record<string, unknown>;
    expect(Object.getPrototypeOf(rebuilt)).toBe(Error.prototype);
    expect(rebuilt.polluted).toBeUndefined();
    expect(rebuilt.ok).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('replace a field that cannot be cloned with a description, keeping the others', () => {
    const err = Object.assign(new Error('with callback'), {
      onRetry: function onRetry() {},
      lock: Symbol('lock'),
      attempt: 3,
    });
    const serialized = serializeError(err);
    expect(() => structuredClone(serialized)).not.toThrow();
    const rebuilt = deserializeError(structuredClone(serialized)) as Error & Record<string, unknown>;
    expect(rebuilt.onRetry).toBe('[not cloneable: function onRetry]');
    expect(rebuilt.lock).toBe('[not cloneable: Symbol(lock)]');
    expect(rebuilt.attempt).toBe(3);
  });

  it('replace a code that cannot be cloned', () => {
    const err = Object.assign(new Error('odd code'), { code: () => 1 });
    const rebuilt = acrossThreads(err) as Error & { code?: unknown };
    expect(rebuilt.code).toMatch(/^\[not cloneable: function/);
  });

  it('never throw, whatever the error does, and describe what cannot be read', () => {
    const boom = '[unreadable: Error: boom]';
    const expected: Record<HostileErrorKind, Record<string, unknown>> = {
      throwingGetter: { name: 'Error', message: 'getter', detail: boom },
      proxyError: { name: boom, message: boom, stack: boom, code: boom },
      untouchableError: {},
      proxyField: { message: 'proxy field', payload: '[not cloneable: Proxy]' },
      unprintableName: { name: boom, message: 'bad name' },
      unprintableMessage: { name: 'Error', message: boom },
      throwingCause: { message: 'cause getter', cause: boom },
      throwingStack: { message: 'stack getter', stack: boom },
      throwingCode: { message: 'code getter', code: boom },
      throwsUntouchable: { message: 'throws a proxy', detail: '[unreadable: a value that cannot be read]' },
      thrownProxy: {},
    };
    for (const kind of hostileErrorKinds) {
      let serialized: SerializedError | undefined;
      expect(() => {
        serialized = serializeError(hostileErrors[kind]());
      }, kind).not.toThrow();
      // What a thread posts and what NATS encodes: plain data, cloneable and printable.
      expect(() => structuredClone(serialized), kind).not.toThrow();
      expect(() => JSON.stringify(serialized), kind).not.toThrow();
      const rebuilt = deserializeError(structuredClone(serialized as SerializedError));
      if (kind === 'untouchableError' || kind === 'thrownProxy') {
        expect(rebuilt, kind).toBe('[not cloneable: Proxy]');
        continue;
      }
      expect(rebuilt, kind).toBeInstanceOf(Error);
      expect(rebuilt, kind).toMatchObject(expected[kind]);
    }
  });

  it('keep a CqrsError a CqrsError when its details cannot be read', () => {
    const err = new CqrsError('VALIDATION', 'bad', { handler: 'Op' });
    Object.defineProperty(err, 'issues', {
      get() {
        throw new TypeError('no issues');
      },
    });
    const rebuilt = deserializeError(structuredClone(serializeError(err)));
    expect(isCqrsError(rebuilt, 'VALIDATION')).toBe(true);
    expect(rebuilt).toMatchObject({
      message: 'bad',
      handler: 'Op',
      issues: ['[unreadable: TypeError: no issues]'],
    });
  });
});
