import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, encodeOutcomes, outcomeAt, sentEarly } from './batchCodec.js';
import type { TaskMessage, TaskOutcome } from './protocol.js';

const task = (overrides: Partial<TaskMessage>): TaskMessage => ({
  m: 0,
  x: 'add',
  n: 'Add',
  k: 'command',
  i: { a: 1, b: 2 },
  md: {},
  c: 0,
  g: 1,
  s: 0,
  d: 0,
  a: 0,
  ...overrides,
});

describe('batchCodec', () => {
  it('carries every task field through a structured clone, handlers once each', () => {
    const tasks = [
      task({ c: 5, g: 9 }),
      task({ m: 1, x: 'report', n: 'Report', k: 'query', s: 3, i: [1, 2], md: { correlationId: 'c-1' } }),
      task({ c: 7, g: 2, i: undefined }),
      task({ s: -1, c: 8, d: 3 }),
      // One its thread may be terminated over: the thread must know, to shelve what it holds before it.
      task({ c: 9, d: 2, a: 1 }),
    ];
    const message = structuredClone(encodeBatch(tasks));
    expect(message.h).toHaveLength(3);
    // No object is sent for empty metadata.
    expect(message.md).toEqual([0, { correlationId: 'c-1' }, 0, 0, 0]);
    expect(decodeBatch(message)).toEqual(tasks);
  });

  it("keeps event subscribers apart: a subscriber's name travels with its handler entry", () => {
    const tasks = [
      task({ n: 'Placed', k: 'event', s: -1, sb: 'invoice' }),
      task({ n: 'Placed', k: 'event', s: -1, sb: 'mailer', c: 1 }),
      task({ n: 'Placed', k: 'event', s: -1, sb: 'invoice', c: 2 }),
      task({ c: 3 }),
    ];
    const message = structuredClone(encodeBatch(tasks));
    // Same module, export and slot, yet two subscribers: two entries, and the command's a third.
    expect(message.h).toHaveLength(3);
    const decoded = decodeBatch(message);
    expect(decoded).toEqual(tasks);
    expect('sb' in (decoded[3] as TaskMessage)).toBe(false);
  });

  it('carries every outcome: values, values as columns, each failure kind, and whether the thread counted it', () => {
    const e = { t: 'error' as const, name: 'Error', message: 'boom' };
    const outcomes: TaskOutcome[] = [
      { ok: true, v: 3, r: true },
      { ok: true, v: undefined },
      { ok: true, v: { k: ['id'], c: [[1, 2]] }, cl: 1 },
      { ok: true, v: { k: ['id'], c: [[3]] }, r: true, cl: 1 },
      { ok: false, k: 'handler', e, r: true },
      { ok: false, k: 'load', e },
      { ok: false, k: 'cancelled', e },
      { ok: false, k: 'result', e, r: true },
    ];
    const answer = structuredClone(encodeOutcomes(outcomes));
    expect(outcomes.map((_, t) => outcomeAt(answer, t))).toEqual(outcomes);
  });

  it('packs an early chunk of outcomes, and a batch answer that marks the ones sent early', () => {
    const outcomes: TaskOutcome[] = [1, 2, 3, 4, 5].map((v) => ({ ok: true, v }));
    const chunk = structuredClone(encodeOutcomes(outcomes, 1, 3, 1));
    expect([0, 1].map((t) => outcomeAt(chunk, t))).toEqual([outcomes[1], outcomes[2]]);
    expect([0, 1].map((t) => sentEarly(chunk, t))).toEqual([false, false]);
    const answer = structuredClone(encodeOutcomes(outcomes, 3, 5, 0));
    expect([0, 1, 2, 3, 4].map((t) => sentEarly(answer, t))).toEqual([true, true, true, false, false]);
    expect(outcomeAt(answer, 4)).toEqual(outcomes[4]);
  });
});
