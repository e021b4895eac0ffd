import { describe, expect, it } from 'vitest';
import { CqrsError } from './CqrsError.js';
import { stripStacks } from './stripStacks.js';

describe('stripStacks', () => {
  it('cuts the error, its cause chain and an AggregateError’s errors to `name: message`', () => {
    const inner = new TypeError('inner');
    const aggregate = new AggregateError([new RangeError('one'), inner], 'many');
    const err = new CqrsError('HANDLER_FAILED', 'outer', { cause: aggregate });
    expect(stripStacks(err)).toBe(err);
    expect(err.stack).toBe('CqrsError: outer');
    expect(aggregate.stack).toBe('AggregateError: many');
    expect(inner.stack).toBe('TypeError: inner');
  });

  it('writes the name alone for an empty message, and leaves non-errors and stackless objects alone', () => {
    const err = new Error('');
    stripStacks(err);
    expect(err.stack).toBe('Error');
    const plain = { cause: 'x' };
    expect(stripStacks(plain)).toEqual({ cause: 'x' });
    expect(stripStacks('a string')).toBe('a string');
    expect(stripStacks(undefined)).toBeUndefined();
  });

  it('survives cycles, frozen errors and throwing getters', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    stripStacks(a);
    expect([a.stack, b.stack]).toEqual(['Error: a', 'Error: b']);

    const frozen = Object.freeze(new Error('frozen'));
    const original = frozen.stack;
    expect(() => stripStacks(frozen)).not.toThrow();
    expect(frozen.stack).toBe(original);

    const hostile = new Error('hostile');
    Object.defineProperty(hostile, 'cause', {
      get() {
        throw new Error('no');
      },
    });
    expect(() => stripStacks(hostile)).not.toThrow();
    expect(hostile.stack).toBe('Error: hostile');
  });
});
