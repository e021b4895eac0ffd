import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { CqrsError } from '../errors/CqrsError.js';
import { isCqrsError } from '../errors/CqrsError.js';
import type { Definition } from '../messages/Definition.js';
import { defineCommand } from '../messages/defineCommand.js';
import { defineQuery } from '../messages/defineQuery.js';
import type { Call, ChainContext, Next } from './Middleware.js';
import { validation } from './validation.js';

const CreateUser = defineCommand('CreateUser', {
  input: z.object({
    userId: z.number().int().min(1),
    username: z.string().min(3),
    role: z.string().default('member'),
    tags: z.array(z.object({ label: z.string() })).default([]),
  }),
  output: z.object({ id: z.number(), name: z.string().transform((s) => s.toUpperCase()) }),
});

function setup(definition: Definition, options?: Parameters<typeof validation>[0]) {
  const recordLateFailure = vi.fn();
  const recordFailureCode = vi.fn();
  const chain: ChainContext = {
    name: definition.name,
    kind: definition.kind,
    definition,
    shared: {
      region: { recordLateFailure, recordFailureCode },
      handlerSlot: () => 7,
      busSlot: () => 0,
    } as never,
  };
  const seen: Call[] = [];
  let result: unknown = 'ok';
  const next: Next = async (c) => {
    seen.push(c);
    if (c.ticket !== undefined) c.ticket.claimed = true;
    return result;
  };
  const run = validation(options)(next, chain);
  const call = (input: unknown, ticket: Call['ticket'] = undefined): Call => ({
    name: definition.name,
    kind: definition.kind,
    input,
    metadata: {},
    signal: undefined,
    definition,
    originThread: undefined,
    depth: 0,
    cancelGraceMs: undefined,
    cancel: undefined,
    ticket,
    order: undefined,
  });
  return {
    run,
    call,
    seen,
    recordLateFailure,
    recordFailureCode,
    returns(value: unknown) {
      result = value;
    },
  };
}

async function rejection(pending: Promise<unknown>): Promise<CqrsError> {
  const err = await pending.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  if (!isCqrsError(err)) throw new Error(`expected a CqrsError, got ${String(err)}`);
  return err;
}

describe('validation', () => {
  it('passes the parsed input on, with defaults applied, in a call with the same keys', async () => {
    const { run, call, seen } = setup(CreateUser);
    const original = call({ userId: 1, username: 'ann' });
    await expect(run(original)).resolves.toBe('ok');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.input).toEqual({ userId: 1, username: 'ann', role: 'member', tags: [] });
    // The performance rule: a changed copy, never a new key.
    expect(Object.keys(seen[0] as Call)).toEqual(Object.keys(original));
  });

  it('refuses a bad input with VALIDATION naming the handler and the first issue path; the handler is not called', async () => {
    const { run, call, seen } = setup(CreateUser);
    const err = await rejection(
      run(call({ userId: 1, username: 'ann', tags: [{ label: 'a' }, { label: 2 }] })),
    );
    expect(err.code).toBe('VALIDATION');
    expect(err.handler).toBe('CreateUser');
    expect(err.message).toMatch(/^CreateUser: invalid input at tags\[1\]\.label: /);
    expect(err.issues).toHaveLength(1);
    expect(err.issues?.[0]).toMatchObject({ code: 'invalid_type', path: ['tags', 1, 'label'] });
    expect(seen).toHaveLength(0);
  });

  it('keeps every issue and says how many more there are', async () => {
    const { run, call } = setup(CreateUser);
    const err = await rejection(run(call({ userId: 0, username: 'x' })));
    expect(err.issues).toHaveLength(2);
    expect(err.message).toMatch(/^CreateUser: invalid input at userId: .* \(and 1 more issue\)$/);
  });

  it('names the root when the input itself is wrong', async () => {
    const { run, call } = setup(CreateUser);
    const err = await rejection(run(call('not an object')));
    expect(err.message).toMatch(/^CreateUser: invalid input at \(root\): /);
  });

  it('lets anything through a z.custom() schema without a check', async () => {
    const Anything = defineQuery('Anything', { input: z.custom<{ x: number }>() });
    const { run, call, seen } = setup(Anything);
    const input = { whatever: true };
    await expect(run(call(input))).resolves.toBe('ok');
    expect(seen[0]?.input).toBe(input);
  });

  it('does not check the result unless asked to', async () => {
    const { run, call, returns } = setup(CreateUser);
    returns({ wrong: true });
    await expect(run(call({ userId: 1, username: 'ann' }))).resolves.toEqual({ wrong: true });
  });

  it('with output: true, parses the result (transforms apply)', async () => {
    const { run, call, returns } = setup(CreateUser, { output: true });
    returns({ id: 1, name: 'ann' });
    await expect(run(call({ userId: 1, username: 'ann' }))).resolves.toEqual({ id: 1, name: 'ANN' });
  });

  it('with output: true, refuses a bad result with VALIDATION saying it was the output', async () => {
    const { run, call, returns, seen } = setup(CreateUser, { output: true });
    returns({ id: 'one', name: 'ann' });
    const err = await rejection(run(call({ userId: 1, username: 'ann' })));
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toMatch(/^CreateUser: the handler returned an invalid output at id: /);
    expect(err.issues?.[0]).toMatchObject({ path: ['id'] });
    expect(seen).toHaveLength(1);
  });

  it('recounts a bad result as a failure when the handler was counted a success, and only then', async () => {
    const { run, call, returns, recordLateFailure, recordFailureCode } = setup(CreateUser, { output: true });
    returns({ id: 'one', name: 'ann' });
    const err = await rejection(
      run(call({ userId: 1, username: 'ann' }, { claimed: false, settledBy: undefined })),
    );
    expect(recordLateFailure).toHaveBeenCalledTimes(1);
    expect(recordLateFailure).toHaveBeenCalledWith(7);
    // …under the code the caller got.
    expect(recordFailureCode).toHaveBeenCalledWith(7, err);
    // No ticket: no recording layer outside counts this call.
    await rejection(run(call({ userId: 1, username: 'ann' })));
    expect(recordLateFailure).toHaveBeenCalledTimes(1);
  });

  it('with output: true and no output schema, passes any result', async () => {
    const NoOutput = defineQuery('NoOutput', { input: z.object({}) });
    const { run, call, returns } = setup(NoOutput, { output: true });
    returns(Symbol.for('anything'));
    await expect(run(call({}))).resolves.toBe(Symbol.for('anything'));
  });

  it('parses schemas with async refinements asynchronously', async () => {
    const Unique = defineQuery('Unique', {
      input: z.object({ name: z.string().refine(async (n) => n !== 'taken', 'name is taken') }),
    });
    const { run, call, seen } = setup(Unique);
    await expect(run(call({ name: 'free' }))).resolves.toBe('ok');
    expect(seen[0]?.input).toEqual({ name: 'free' });
    const err = await rejection(run(call({ name: 'taken' })));
    expect(err.message).toBe('Unique: invalid input at name: name is taken');
    expect(seen).toHaveLength(1);
  });

  it('reports a schema that throws as VALIDATION with the thrown error as cause', async () => {
    const boom = new Error('refinement bug');
    const Buggy = defineQuery('Buggy', {
      input: z.string().refine(() => {
        throw boom;
      }),
    });
    const { run, call, seen } = setup(Buggy);
    const err = await rejection(run(call('x')));
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toBe('Buggy: the input schema threw: refinement bug');
    expect(err.cause).toBe(boom);
    expect(seen).toHaveLength(0);
  });

  it('refuses a non-boolean output option at once with INVALID_REGISTRATION', () => {
    expect(() => validation({ output: 'yes' as never })).toThrow(
      expect.objectContaining({
        code: 'INVALID_REGISTRATION',
        message: expect.stringMatching(/options\.output/),
      }),
    );
  });
});
