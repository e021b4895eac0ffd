import { serializeError } from '@cqrs-pool/core/internal';
import { describe, expect, it } from 'vitest';
import { withoutStacks } from './withoutStacks.js';

describe('withoutStacks', () => {
  it('removes the stacks of the error, its causes and errors held in fields, maps, sets and cycles', () => {
    const cyclic: Record<string, unknown> = { err: new RangeError('in a cycle') };
    cyclic.self = cyclic;
    const thrown = Object.assign(new Error('outer', { cause: new TypeError('inner') }), {
      cyclic,
      map: new Map([['k', new SyntaxError('in a map')]]),
      set: new Set([new EvalError('in a set')]),
      nested: { deeper: [new Error('in an array', { cause: new Error('its cause') })] },
      text: 'at /srv/app/handler.js:1:1 is data, not a stack',
    });
    const data = withoutStacks(serializeError(thrown));
    const seen = new Set<string>();
    const visit = (v: unknown, depth: number): void => {
      if (typeof v !== 'object' || v === null || depth > 8) return;
      if (v instanceof Error) {
        expect(v.stack, v.message).toBeUndefined();
        seen.add(v.message);
      }
      const children = v instanceof Map || v instanceof Set ? [...v].flat() : Object.values(v);
      for (const child of children) visit(child, depth + 1);
      if (v instanceof Error) visit(v.cause, depth + 1);
    };
    visit(data, 0);
    expect([...seen].sort()).toEqual(['in a cycle', 'in a map', 'in a set', 'in an array', 'its cause']);
    expect(data).toMatchObject({ message: 'outer', cause: { message: 'inner' } });
    expect('stack' in data).toBe(false);
    expect(data.t === 'error' && data.fields?.text).toBe('at /srv/app/handler.js:1:1 is data, not a stack');
  });

  it('removes the stacks inside a thrown value that is not an error', () => {
    const data = withoutStacks(serializeError({ reason: new Error('wrapped') }));
    expect(data.t === 'value' && (data.value as { reason: Error }).reason.stack).toBeUndefined();
  });
});
