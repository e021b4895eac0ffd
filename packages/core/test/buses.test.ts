import type { Definition, Middleware } from '@cqrs-pool/core';
import { CommandBus, defineCommand, defineQuery, inWorker, isCqrsError, QueryBus } from '@cqrs-pool/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionAtOnce, rejectionWith } from './rejectionWith.js';

const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
const Greet = defineQuery('Greet', { input: z.object({ who: z.string() }), output: z.string() });

function registrationError(register: () => void): unknown {
  try {
    register();
  } catch (err) {
    return err;
  }
  throw new Error('registerHandler did not throw');
}

describe('registerHandler', () => {
  it('refuses a definition with an empty name with INVALID_REGISTRATION', () => {
    const bus = new CommandBus();
    const nameless = {
      name: '',
      kind: 'command',
      input: z.object({}),
      output: undefined,
    } as Definition<'command'>;
    const err = registrationError(() => bus.registerHandler(nameless, () => 1));
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect(bus.getRegisteredCommands()).toEqual([]);
  });

  it('refuses a missing handler with INVALID_REGISTRATION naming the message', () => {
    const bus = new CommandBus();
    const err = registrationError(() => bus.registerHandler(Add, undefined as never));
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect((err as Error).message).toContain('Add');
    expect(bus.getRegisteredCommands()).toEqual([]);
  });

  it('refuses a query definition on a CommandBus and a command definition on a QueryBus', () => {
    const commands = new CommandBus();
    const queries = new QueryBus();
    const onCommands = registrationError(() =>
      commands.registerHandler(Greet as unknown as Definition<'command'>, () => 'hi'),
    );
    const onQueries = registrationError(() =>
      queries.registerHandler(Add as unknown as Definition<'query'>, () => 1),
    );
    expect(isCqrsError(onCommands, 'INVALID_REGISTRATION')).toBe(true);
    expect(isCqrsError(onQueries, 'INVALID_REGISTRATION')).toBe(true);
    expect(commands.getRegisteredCommands()).toEqual([]);
    expect(queries.getRegisteredQueries()).toEqual([]);
  });

  it('refuses an inWorker() handler on a bus without a pool with INVALID_REGISTRATION', () => {
    const bus = new CommandBus();
    const err = registrationError(() => bus.registerHandler(Add, inWorker(fixtureUrl('handlers'), 'square')));
    expect(isCqrsError(err, 'INVALID_REGISTRATION')).toBe(true);
    expect((err as Error).message).toMatch(/WorkerPool/);
  });

  it('refuses a second handler for the same name with DUPLICATE_HANDLER and keeps the first', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Add, ({ a, b }) => a + b);
    const err = registrationError(() => bus.registerHandler(Add, () => -1));
    expect(isCqrsError(err, 'DUPLICATE_HANDLER')).toBe(true);
    await expect(bus.execute(Add, { a: 2, b: 3 })).resolves.toBe(5);
  });

  it('keeps command and query names apart: the same name may be registered once on each bus', async () => {
    const commands = new CommandBus();
    const queries = new QueryBus();
    commands.registerHandler(defineCommand('Same', { input: z.object({}) }), () => 'command');
    queries.registerHandler(defineQuery('Same', { input: z.object({}) }), () => 'query');
    await expect(commands.execute('Same', {})).resolves.toBe('command');
    await expect(queries.execute('Same', {})).resolves.toBe('query');
  });
});

describe('execute', () => {
  it('rejects an unknown name with HANDLER_NOT_FOUND', async () => {
    const bus = new CommandBus();
    const err = await rejectionWith(bus.execute('Nope', {}), 'HANDLER_NOT_FOUND');
    expect(err.message).toContain('Nope');
  });

  it('rejects a query definition executed on a CommandBus with HANDLER_NOT_FOUND', async () => {
    const commands = new CommandBus();
    const queries = new QueryBus();
    queries.registerHandler(Greet, ({ who }) => `hi ${who}`);
    await rejectionWith(
      commands.execute(Greet as unknown as Definition<'command'>, { who: 'x' }),
      'HANDLER_NOT_FOUND',
    );
  });

  it('runs a handler by definition and by name with the same result', async () => {
    const bus = new CommandBus();
    bus.registerHandler(Add, ({ a, b }) => a + b);
    await expect(bus.execute(Add, { a: 1, b: 2 })).resolves.toBe(3);
    await expect(bus.execute('Add', { a: 1, b: 2 })).resolves.toBe(3);
  });

  it('lists the registered names in registration order', () => {
    const commands = new CommandBus();
    const queries = new QueryBus();
    commands.registerHandler(Add, ({ a, b }) => a + b);
    commands.registerHandler(defineCommand('Remove', { input: z.object({}) }), () => undefined);
    queries.registerHandler(Greet, ({ who }) => who);
    expect(commands.getRegisteredCommands()).toEqual(['Add', 'Remove']);
    expect(queries.getRegisteredQueries()).toEqual(['Greet']);
  });

  it('hands metadata to an inline handler as ctx.metadata', async () => {
    const bus = new QueryBus();
    bus.registerHandler(Greet, (_input, ctx) => JSON.stringify(ctx.metadata));
    const seen = await bus.execute(Greet, { who: 'x' }, { metadata: { correlationId: 'c-1', user: 'ann' } });
    expect(JSON.parse(seen)).toEqual({ correlationId: 'c-1', user: 'ann' });
  });

  it('wraps an error thrown by an inline handler in HANDLER_FAILED with the original as cause', async () => {
    const bus = new CommandBus();
    const original = new RangeError('too big');
    bus.registerHandler(Add, () => {
      throw original;
    });
    const err = await rejectionWith(bus.execute(Add, { a: 1, b: 1 }), 'HANDLER_FAILED');
    expect(err.cause).toBe(original);
  });

  it('settles an inline call with ABORTED as soon as the caller aborts, and aborts ctx.signal', async () => {
    const bus = new CommandBus();
    let handlerSignal: AbortSignal | undefined;
    bus.registerHandler(Add, (_input, ctx) => {
      handlerSignal = ctx.signal;
      return new Promise<number>(() => {}); // never settles by itself
    });
    const controller = new AbortController();
    const pending = bus.execute(Add, { a: 1, b: 1 }, { signal: controller.signal });
    await Promise.resolve();
    controller.abort();
    // Settled before the event loop turned, by the abort alone (the handler never settles).
    await rejectionAtOnce(pending, 'ABORTED');
    expect(handlerSignal?.aborted).toBe(true);
  });

  it('does not run an inline handler when the signal was aborted before the call', async () => {
    const bus = new CommandBus();
    let runs = 0;
    bus.registerHandler(Add, () => ++runs);
    await rejectionWith(bus.execute(Add, { a: 1, b: 1 }, { signal: AbortSignal.abort() }), 'ABORTED');
    expect(runs).toBe(0);
  });
});

describe('middleware', () => {
  function recorder(log: string[], label: string, factoryCalls: Map<string, number>): Middleware {
    return (next) => {
      factoryCalls.set(label, (factoryCalls.get(label) ?? 0) + 1);
      return async (call) => {
        log.push(`${label}>`);
        const result = await next(call);
        log.push(`<${label}`);
        return result;
      };
    };
  }

  it('runs bus-wide middleware outside per-handler middleware, first listed outermost', async () => {
    const log: string[] = [];
    const factories = new Map<string, number>();
    const bus = new CommandBus({
      middleware: [recorder(log, 'bus1', factories), recorder(log, 'bus2', factories)],
    });
    bus.registerHandler(
      Add,
      ({ a, b }) => {
        log.push('handler');
        return a + b;
      },
      { middleware: [recorder(log, 'own1', factories), recorder(log, 'own2', factories)] },
    );
    await expect(bus.execute(Add, { a: 1, b: 1 })).resolves.toBe(2);
    expect(log).toEqual(['bus1>', 'bus2>', 'own1>', 'own2>', 'handler', '<own2', '<own1', '<bus2', '<bus1']);
  });

  it('composes the chain once per registration, not per call', async () => {
    const log: string[] = [];
    const factories = new Map<string, number>();
    const bus = new CommandBus({ middleware: [recorder(log, 'bus', factories)] });
    bus.registerHandler(Add, ({ a, b }) => a + b, { middleware: [recorder(log, 'own', factories)] });
    bus.registerHandler(defineCommand('Other', { input: z.object({}) }), () => 0);
    expect(Object.fromEntries(factories)).toEqual({ bus: 2, own: 1 });
    for (let i = 0; i < 10; i++) await bus.execute(Add, { a: i, b: i });
    await bus.execute('Other', {});
    expect(Object.fromEntries(factories)).toEqual({ bus: 2, own: 1 });
  });

  it('gives middleware the call: name, kind, input, metadata, signal', async () => {
    const seen: unknown[] = [];
    const spy: Middleware = (next) => (call) => {
      seen.push({
        name: call.name,
        kind: call.kind,
        input: call.input,
        metadata: call.metadata,
        signal: call.signal,
      });
      return next(call);
    };
    const bus = new QueryBus({ middleware: [spy] });
    bus.registerHandler(Greet, ({ who }) => who);
    const signal = new AbortController().signal;
    await bus.execute(Greet, { who: 'x' }, { signal, metadata: { correlationId: 'c-9' } });
    expect(seen).toEqual([
      { name: 'Greet', kind: 'query', input: { who: 'x' }, metadata: { correlationId: 'c-9' }, signal },
    ]);
  });

  it('lets middleware short-circuit: the handler is not called', async () => {
    let runs = 0;
    const refuse: Middleware = () => () => Promise.resolve(-1);
    const bus = new CommandBus();
    bus.registerHandler(Add, () => ++runs, { middleware: [refuse] });
    await expect(bus.execute(Add, { a: 1, b: 1 })).resolves.toBe(-1);
    expect(runs).toBe(0);
  });

  it('turns a middleware that throws synchronously into a rejection', async () => {
    const boom: Middleware = () => () => {
      throw new Error('sync throw');
    };
    const bus = new CommandBus({ middleware: [boom] });
    bus.registerHandler(Add, ({ a, b }) => a + b);
    const pending = bus.execute(Add, { a: 1, b: 1 });
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toThrow('sync throw');
  });
});

describe('close', () => {
  it('lets an in-flight inline call finish, then refuses new calls with CLOSED', async () => {
    const bus = new CommandBus();
    let finish: (value: number) => void = () => {};
    bus.registerHandler(Add, () => new Promise<number>((resolve) => (finish = resolve)));
    const inFlight = bus.execute(Add, { a: 1, b: 1 });
    let closed = false;
    const closing = bus.close().then(() => (closed = true));
    await rejectionWith(bus.execute(Add, { a: 1, b: 1 }), 'CLOSED');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false);
    finish(42);
    await expect(inFlight).resolves.toBe(42);
    await closing;
    expect(closed).toBe(true);
    await rejectionWith(bus.execute(Add, { a: 1, b: 1 }), 'CLOSED');
    expect(() => bus.registerHandler(defineCommand('Late', { input: z.object({}) }), () => 0)).toThrow(
      expect.objectContaining({ code: 'CLOSED' }),
    );
  });
});
