import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCommand } from '../messages/defineCommand.js';
import { compose } from './compose.js';
import type { Call, ChainContext, Middleware, Next } from './Middleware.js';

const call: Call = {
  name: 'Do',
  kind: 'command',
  input: 1,
  metadata: {},
  signal: undefined,
  definition: defineCommand('Do', { input: z.number() }),
  originThread: undefined,
  depth: 0,
  cancelGraceMs: undefined,
  cancel: undefined,
  ticket: undefined,
  order: undefined,
};

const chainContext = {
  name: 'Do',
  kind: 'command',
  definition: call.definition,
  shared: {} as ChainContext['shared'],
} as ChainContext;

function tracing(label: string, log: string[]): Middleware {
  return (next) => async (c) => {
    log.push(`${label}>`);
    const result = await next(c);
    log.push(`<${label}`);
    return result;
  };
}

describe('compose', () => {
  it('makes the first middleware the outermost: it sees the call first and the result last', async () => {
    const log: string[] = [];
    const terminal: Next = async () => {
      log.push('handler');
      return 'done';
    };
    const chain = compose([tracing('a', log), tracing('b', log), tracing('c', log)], terminal, chainContext);
    await expect(chain(call)).resolves.toBe('done');
    expect(log).toEqual(['a>', 'b>', 'c>', 'handler', '<c', '<b', '<a']);
  });

  it('calls each middleware factory once, at composition, however many calls follow', async () => {
    let factoryCalls = 0;
    const counted: Middleware = (next) => {
      factoryCalls++;
      return next;
    };
    const chain = compose([counted, counted], async () => 'ok', chainContext);
    expect(factoryCalls).toBe(2);
    for (let i = 0; i < 5; i++) await chain(call);
    expect(factoryCalls).toBe(2);
  });

  it('returns the terminal itself when there is no middleware', () => {
    const terminal: Next = async () => 'ok';
    expect(compose([], terminal, chainContext)).toBe(terminal);
  });

  it('passes a changed call down the chain', async () => {
    const setInput: Middleware = (next) => (c) => next({ ...c, input: 2 });
    const chain = compose([setInput], async (c) => c.input, chainContext);
    await expect(chain(call)).resolves.toBe(2);
  });

  it('hands every middleware the handler it wraps', () => {
    const seen: string[] = [];
    const spy: Middleware = (next, chain) => {
      seen.push(`${chain.kind}:${chain.name}`);
      return next;
    };
    compose([spy, spy], async () => 'ok', chainContext);
    expect(seen).toEqual(['command:Do', 'command:Do']);
  });
});
