/**
 * Per-key order on real threads: calls whose `orderingKey` is equal start in the order `execute` was called
 * and never overlap — checked from ticks of a shared logical clock taken inside the handlers (start of the
 * next > end of the previous), whichever thread runs them — with random durations, failures, retries,
 * aborts and timeouts of waiting calls, and close() mid-run.
 */
import type { Middleware } from '@cqrs-pool/core';
import {
  CommandBus,
  defineCommand,
  inWorker,
  isCqrsError,
  retry,
  timeout,
  WorkerPool,
} from '@cqrs-pool/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { HANG_MS, newControl, releaseAll, waitForStarts, waitUntil } from './control.js';
import { Block } from './fixtures/messages.js';
import { step } from './fixtures/orderingHandlers.js';
import { Step, stepLog } from './fixtures/orderingMessages.js';
import { fixtureUrl } from './fixtureUrl.js';
import { rejectionWith } from './rejectionWith.js';

const handlers = fixtureUrl('orderingHandlers');
const StepInline = defineCommand('StepInline', { input: Step.input, output: Step.output });
let pool: WorkerPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

type Key = string | number | undefined;
const byKey = (input: { key?: Key }) => input.key;

function setup(options: { threads?: number; maxQueue?: number; middleware?: Middleware[] } = {}) {
  pool = new WorkerPool({ threads: options.threads ?? 2, maxQueue: options.maxQueue ?? 10_000 });
  const commands = new CommandBus({ pool, middleware: options.middleware ?? [] });
  commands.registerHandler(Step, inWorker(handlers, 'stepInThread'), { orderingKey: byKey });
  commands.registerHandler(StepInline, (input) => step(input, false), { orderingKey: byKey });
  commands.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'), {
    orderingKey: () => 'blocked',
  });
  return commands;
}

/** Start and end ticks of step `seq` (0 when it never ran). */
function ticks(log: Int32Array, seq: number): { start: number; end: number } {
  return { start: Atomics.load(log, 1 + 2 * seq), end: Atomics.load(log, 2 + 2 * seq) };
}

/**
 * Checks the log: for each key, the steps that ran started in call order, each after the previous one
 * ended. Steps without a key are not checked. Returns how many steps ran.
 */
function checkOrder(
  log: Int32Array,
  keys: readonly Key[],
  ran: (seq: number) => boolean = () => true,
): number {
  const lastEnd = new Map<Key, { seq: number; end: number }>();
  let count = 0;
  for (let seq = 0; seq < keys.length; seq++) {
    const { start, end } = ticks(log, seq);
    if (start === 0 || !ran(seq)) continue;
    count++;
    const key = keys[seq];
    if (key === undefined) continue;
    const before = lastEnd.get(key);
    if (before !== undefined && !(start > before.end)) {
      throw new Error(
        `key ${String(key)}: step ${seq} started at ${start}, before step ${before.seq} ended at ${before.end}`,
      );
    }
    lastEnd.set(key, { seq, end });
  }
  return count;
}

describe('per-key order', () => {
  it.each([
    ['worker', Step],
    ['inline', StepInline],
  ] as const)(
    '%s handler: calls of one key start in call order and never overlap, on 2 threads',
    async (_kind, def) => {
      const commands = setup();
      const calls = 120;
      const log = stepLog(calls);
      const keys = Array.from({ length: calls }, (_, i) => ['a', 'b', 7, 'c'][i % 4] as Key);
      const results = await Promise.all(
        keys.map((key, seq) => commands.execute(def, { key, seq, log, ms: (seq * 7) % 4 })),
      );
      expect(results).toEqual(keys.map((_, seq) => seq));
      expect(checkOrder(log, keys)).toBe(calls);
      const m = commands.getMetrics().handlers[def.name];
      expect(m?.ordering).toMatchObject({ waiting: 0, wait: { count: calls } });
    },
  );

  it('holds with metrics off and with middleware, inline and in a thread', async () => {
    pool = new WorkerPool({ threads: 2 });
    const plain = new CommandBus({ pool, metrics: false });
    const wrapped = new CommandBus({ pool, middleware: [(next) => (call) => next(call)] });
    for (const bus of [plain, wrapped]) {
      bus.registerHandler(Step, inWorker(handlers, 'stepInThread'), { orderingKey: byKey });
      bus.registerHandler(StepInline, (input) => step(input, false), { orderingKey: byKey });
    }
    for (const bus of [plain, wrapped]) {
      const calls = 40;
      const log = stepLog(calls);
      const keys = Array.from({ length: calls }, (_, i) => ['a', 'b'][i % 2] as Key);
      const defs = keys.map((_, seq) => (seq < calls / 2 ? Step : StepInline));
      await Promise.all(
        keys.map((key, seq) => bus.execute(defs[seq] ?? Step, { key, seq, log, ms: seq % 3 })),
      );
      expect(
        checkOrder(
          log,
          keys.map((key, seq) => `${defs[seq]?.name}/${key}`),
        ),
      ).toBe(calls);
      expect(bus.pending).toBe(0);
    }
  });

  it('lets other keys run in parallel while a key waits: a blocked key holds no thread of the others', async () => {
    const commands = setup({ threads: 2 });
    const control = newControl();
    const blocked = [commands.execute(Block, { control }), commands.execute(Block, { control })];
    await waitForStarts(control);
    // One thread is held by the first Block; the second Block waits for its key, not for a thread.
    expect(commands.getMetrics().handlers.Block?.ordering?.waiting).toBe(1);
    const log = stepLog(20);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((key, seq) => commands.execute(Step, { key, seq, log, ms: 0 })));
    expect(checkOrder(log, keys)).toBe(20);
    releaseAll(control);
    await Promise.all(blocked);
    expect(Atomics.load(control, 0)).toBe(2);
  });

  it('a waiting call that aborts leaves at once; the calls behind it keep their order; a failure does not stop the next', async () => {
    const commands = setup({ threads: 1 });
    const control = newControl();
    const first = commands.execute(Block, { control });
    await waitForStarts(control);
    const controller = new AbortController();
    const second = commands.execute(Block, { control }, { signal: controller.signal });
    const third = commands.execute(Block, { control });
    controller.abort();
    await rejectionWith(second, 'ABORTED');
    // The aborted call never ran, and the first still holds the key.
    expect(Atomics.load(control, 0)).toBe(1);
    releaseAll(control);
    await expect(Promise.all([first, third])).resolves.toEqual(['released', 'released']);
    expect(Atomics.load(control, 0)).toBe(2);

    const log = stepLog(3);
    const failing = commands.execute(StepInline, { key: 'x', seq: 0, log, ms: 2, failures: 1 });
    const next = commands.execute(StepInline, { key: 'x', seq: 1, log, ms: 0 });
    await rejectionWith(failing, 'HANDLER_FAILED');
    await expect(next).resolves.toBe(1);
    checkOrder(log, ['x', 'x']);
  });

  it('a retried call keeps its place: the next call of its key starts after its last attempt', async () => {
    const commands = setup({ middleware: [retry({ maxRetries: 3, baseDelayMs: 5, onCommands: true })] });
    const log = stepLog(2);
    const [a, b] = await Promise.all([
      commands.execute(Step, { key: 'r', seq: 0, log, ms: 1, failures: 2 }),
      commands.execute(Step, { key: 'r', seq: 1, log, ms: 0 }),
    ]);
    expect([a, b]).toEqual([0, 1]);
    // The log keeps the last attempt's ticks: the second call started after it ended.
    expect(ticks(log, 1).start).toBeGreaterThan(ticks(log, 0).end);
    expect(commands.getMetrics().handlers.Step?.executions).toBe(4);
  });

  it('a waiting call that times out leaves at once; an aborted holder keeps its key until its thread is done', async () => {
    pool = new WorkerPool({ threads: 2, cancelGraceMs: 30_000 });
    const commands = new CommandBus({ pool });
    const order = { orderingKey: () => 'K', orderingGroup: 'g' };
    commands.registerHandler(Block, inWorker(fixtureUrl('handlers'), 'block'), order);
    commands.registerHandler(StepInline, (input) => step(input, false), {
      ...order,
      middleware: [timeout(50)],
    });
    commands.registerHandler(Step, inWorker(handlers, 'stepInThread'), order);
    const control = newControl();
    const controller = new AbortController();
    const holder = commands.execute(Block, { control }, { signal: controller.signal });
    await waitForStarts(control);
    const log = stepLog(2);
    // Waiting behind the holder, it times out there and leaves without running.
    await rejectionWith(commands.execute(StepInline, { seq: 0, log, ms: 0 }), 'TIMEOUT');
    expect(ticks(log, 0).start).toBe(0);
    // The holder's caller gives up; its handler runs on in its thread (it ignores cancellation), so it keeps
    // the key: the next call waits.
    controller.abort();
    await rejectionWith(holder, 'ABORTED');
    const after = commands.execute(Step, { seq: 1, log, ms: 0 });
    await waitUntil(
      () => commands.getMetrics().handlers.Step?.ordering?.waiting === 1,
      HANG_MS,
      'Step to wait',
    );
    expect(ticks(log, 1).start).toBe(0);
    releaseAll(control);
    await expect(after).resolves.toBe(1);
    expect(commands.getMetrics().handlers.StepInline?.failuresByCode).toEqual({ TIMEOUT: 1 });
  });

  it('counts waiting calls against maxQueue: one more is refused with OVERLOADED at once', async () => {
    const commands = setup({ threads: 1, maxQueue: 2 });
    const control = newControl();
    const holder = commands.execute(Block, { control });
    await waitForStarts(control);
    const waiting = [commands.execute(Block, { control }), commands.execute(Block, { control })];
    await rejectionWith(commands.execute(Block, { control }), 'OVERLOADED');
    expect(commands.getMetrics().handlers.Block?.failuresByCode).toEqual({ OVERLOADED: 1 });
    releaseAll(control);
    await Promise.all([holder, ...waiting]);
  });

  it('close() drains keyed calls: every call settles, none is lost', async () => {
    const commands = setup();
    const calls = 60;
    const log = stepLog(calls);
    const keys = Array.from({ length: calls }, (_, i) => `k${i % 3}`);
    const defs = keys.map((_, seq) => (seq % 2 === 0 ? Step : StepInline));
    const pending = keys.map((key, seq) => commands.execute(defs[seq] ?? Step, { key, seq, log, ms: 1 }));
    const closed = commands.close();
    const outcomes = await Promise.allSettled(pending);
    await closed;
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
    // Each handler has its own key space.
    expect(
      checkOrder(
        log,
        keys.map((key, seq) => `${defs[seq]?.name}/${key}`),
      ),
    ).toBe(calls);
    await rejectionWith(commands.execute(Step, { key: 'k0', seq: 0, log, ms: 0 }), 'CLOSED');
  });

  it('shares keys between handlers of one orderingGroup', async () => {
    pool = new WorkerPool({ threads: 2 });
    const commands = new CommandBus({ pool });
    const Deposit = defineCommand('Deposit', { input: Step.input, output: Step.output });
    commands.registerHandler(Step, inWorker(handlers, 'stepInThread'), {
      orderingKey: byKey,
      orderingGroup: 'account',
    });
    commands.registerHandler(Deposit, (input) => step(input, false), {
      orderingKey: byKey,
      orderingGroup: 'account',
    });
    const log = stepLog(40);
    const keys = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 'acc-1' : 'acc-2'));
    await Promise.all(
      keys.map((key, seq) => commands.execute(seq % 3 === 0 ? Deposit : Step, { key, seq, log, ms: 1 })),
    );
    expect(checkOrder(log, keys)).toBe(40);
  });

  it('refuses a key function that throws or returns another type with VALIDATION, counted', async () => {
    pool = new WorkerPool({ threads: 1 });
    const commands = new CommandBus({ pool });
    const Odd = defineCommand('Odd', { input: Step.input });
    commands.registerHandler(Odd, () => 1, {
      orderingKey: (input) => {
        if (input.seq === 0) throw new Error('no key for 0');
        return (input.seq === 1 ? { an: 'object' } : 'fine') as string;
      },
    });
    const log = stepLog(1);
    const thrown = await rejectionWith(commands.execute(Odd, { seq: 0, log, ms: 0 }), 'VALIDATION');
    expect(thrown.message).toMatch(/orderingKey threw: no key for 0/);
    await rejectionWith(commands.execute(Odd, { seq: 1, log, ms: 0 }), 'VALIDATION');
    await expect(commands.execute(Odd, { seq: 2, log, ms: 0 })).resolves.toBe(1);
    expect(commands.getMetrics().handlers.Odd).toMatchObject({ executions: 3, failures: 2 });
    expect(() => commands.registerHandler(Step, () => 1, { orderingKey: 'key' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_REGISTRATION' }),
    );
    expect(() => commands.registerHandler(Step, () => 1, { orderingGroup: 'g' })).toThrow(
      /needs options.orderingKey/,
    );
  });

  it('holds over random schedules of keys, durations, failures and aborts (property)', async () => {
    const commands = setup({ threads: 2 });
    const call = fc.record({
      key: fc.constantFrom<Key>('a', 'b', 1, undefined),
      worker: fc.boolean(),
      ms: fc.integer({ min: 0, max: 3 }),
      fail: fc.boolean(),
      abortAfterMs: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 30 }), async (plan) => {
        const log = stepLog(plan.length);
        const outcomes = await Promise.allSettled(
          plan.map((c, seq) => {
            let signal: AbortSignal | undefined;
            if (c.abortAfterMs !== undefined) {
              const controller = new AbortController();
              setTimeout(() => controller.abort(), c.abortAfterMs);
              signal = controller.signal;
            }
            const input = { key: c.key, seq, log, ms: c.ms, failures: c.fail ? 1 : 0 };
            return commands.execute(
              c.worker ? Step : StepInline,
              input,
              signal === undefined ? {} : { signal },
            );
          }),
        );
        for (const [seq, o] of outcomes.entries()) {
          if (o.status === 'fulfilled') expect(o.value).toBe(seq);
          else
            expect(isCqrsError(o.reason) && ['HANDLER_FAILED', 'ABORTED'].includes(o.reason.code)).toBe(true);
        }
        // An aborted call may have started (its handler runs on): every step that ran is in order.
        checkOrder(
          log,
          plan.map((c) => (c.key === undefined ? undefined : `${c.worker}/${c.key}`)),
        );
        expect(commands.getMetrics().handlers.Step?.ordering?.waiting).toBe(0);
      }),
      { numRuns: 40 },
    );
    // Every aborted worker step ends in its thread (it ignores cancellation): wait for the pool to be idle.
    await waitUntil(() => pool?.inFlight === 0, HANG_MS, 'the pool to be idle');
  }, 60_000);
});
