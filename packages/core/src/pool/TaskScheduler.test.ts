import type { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';
import { CallBoard, CallBoardView } from '../shared/CallBoard.js';
import { encodeOutcomes } from './batchCodec.js';
import type { BatchMessage, TaskMessage, TaskOutcome } from './protocol.js';
import { TaskScheduler } from './TaskScheduler.js';

/** A piscina stand-in that keeps what was posted and answers when the test says. */
function fakePiscina() {
  const posted: { message: TaskMessage | BatchMessage; answer: (value: unknown) => void }[] = [];
  const piscina = {
    run: (message: TaskMessage | BatchMessage) =>
      new Promise((answer) => {
        posted.push({ message, answer });
      }),
  } as unknown as Piscina;
  return { piscina, posted };
}

type Posted = ReturnType<typeof fakePiscina>['posted'];

/** The `n`th message posted, as a batch; throws when there is none. */
function batchAt(posted: Posted, n: number): BatchMessage {
  const entry = posted[n];
  if (entry === undefined) throw new Error(`no message #${n} was posted`);
  return entry.message as BatchMessage;
}

const task = (c: number): TaskMessage => ({ m: 0, x: 'f', n: 'Cmd', i: c, md: {}, c, g: 1, s: -1, d: 0 });
const ok = (v: unknown): TaskOutcome => ({ ok: true, v });

// A delay bound far above anything a test can take: the batch size follows `maxSize` and the backlog alone,
// not how long the stand-in's first answer took on a busy machine.
const limits = { maxSize: 4, maxDelayMs: 60_000 };

describe('TaskScheduler: how long a batch may hold its outcomes', () => {
  it('holds them only while a whole batch per thread still waits behind it', async () => {
    const { piscina, posted } = fakePiscina();
    const scheduler = new TaskScheduler(piscina, { capacity: 1, batching: limits, notStarted: () => true });
    const results = [scheduler.submit(task(0), undefined)];
    // The thread is busy with the first call: the next ones wait, 6 of them.
    for (let c = 1; c <= 6; c++) results.push(scheduler.submit(task(c), undefined));
    expect(posted).toHaveLength(1);
    posted[0]?.answer(ok(0));
    await results[0];
    // A batch of 4 leaves with 2 behind it (fewer than a batch per thread): outcomes go back as calls end.
    const second = batchAt(posted, 1);
    expect(second.i).toEqual([1, 2, 3, 4]);
    expect(second.hold).toBeUndefined();

    const deep = fakePiscina();
    const busy = new TaskScheduler(deep.piscina, { capacity: 1, batching: limits, notStarted: () => true });
    const calls = Array.from({ length: 13 }, (_, c) => busy.submit(task(c), undefined));
    deep.posted[0]?.answer(ok(0));
    await calls[0];
    // 4 leave, 8 wait behind them: two more batches for the one thread, so this one holds (half the bound).
    const held = batchAt(deep.posted, 1);
    expect(held.i).toEqual([1, 2, 3, 4]);
    expect(held.hold).toBe(30_000);
    deep.posted[1]?.answer(encodeOutcomes([ok(1), ok(2), ok(3), ok(4)], 0, 4, 0));
    expect(await Promise.all(calls.slice(1, 5))).toEqual([1, 2, 3, 4].map(ok));
    // 4 leave with 4 behind: still a batch per thread waiting.
    expect(batchAt(deep.posted, 2).hold).toBe(30_000);
  });
});

describe('TaskScheduler: the board of waiting calls', () => {
  const ok1 = (v: unknown): TaskOutcome => ({ ok: true, v });
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('pins the calls that wait, as a batch, for a thread to take; each settles by its early outcome', async () => {
    const { piscina, posted } = fakePiscina();
    const board = new CallBoard(2);
    const scheduler = new TaskScheduler(piscina, {
      capacity: 1,
      batching: limits,
      notStarted: () => true,
      board,
    });
    const results = [0, 1, 2].map((c) => scheduler.submit(task(c), undefined));
    await tick();
    expect(posted).toHaveLength(1);
    expect(scheduler.waiting).toBe(2);
    // The busy thread finishes its call and takes the pinned batch before it answers (see handlerHost.ts).
    const taken = new CallBoardView(board.buffer).take(9);
    expect(taken?.message).toMatchObject({ i: [1, 2] });
    expect(scheduler.waiting).toBe(0);
    scheduler.resolveEarly({
      early: true,
      c: [0],
      g: [1],
      o: encodeOutcomes([ok1(0)]),
    });
    scheduler.resolveEarly({
      early: true,
      c: [1, 2],
      g: [1, 1],
      o: encodeOutcomes([ok1(1), ok1(2)]),
    });
    posted[0]?.answer({ ...encodeOutcomes([ok1(0)], 1, 1, 0), b: 2 });
    expect(await Promise.all(results)).toEqual([0, 1, 2].map(ok1));
    expect(posted).toHaveLength(1);
    expect(scheduler.boardMessages).toBe(1);
  });

  it('takes back what no thread took when a thread goes idle, and posts it in its order', async () => {
    const { piscina, posted } = fakePiscina();
    const board = new CallBoard(2);
    const scheduler = new TaskScheduler(piscina, {
      capacity: 1,
      batching: limits,
      notStarted: () => true,
      board,
    });
    const first = scheduler.submit(task(0), undefined);
    const second = scheduler.submit(task(1), undefined);
    await tick();
    const third = scheduler.submit(task(2), undefined);
    await tick();
    // Two entries pinned, one call each; the thread answers without taking them (it looked just before).
    posted[0]?.answer(ok1(0));
    expect(await first).toEqual(ok1(0));
    expect(batchAt(posted, 1).i).toEqual([1, 2]);
    expect(new CallBoardView(board.buffer).take(9)).toBeUndefined();
    expect(scheduler.boardMessages).toBe(0);
    posted[1]?.answer(encodeOutcomes([ok1(1), ok1(2)]));
    expect(await Promise.all([second, third])).toEqual([ok1(1), ok1(2)]);
  });

  it('reruns what a dead thread took and never started, and fails what it started', async () => {
    const { piscina, posted } = fakePiscina();
    const board = new CallBoard(2);
    const started = new Set([1]);
    const scheduler = new TaskScheduler(piscina, {
      capacity: 1,
      batching: limits,
      notStarted: (m) => !started.has(m.c),
      board,
    });
    const first = scheduler.submit(task(0), undefined);
    const rest = [1, 2].map((c) => scheduler.submit(task(c), undefined));
    await tick();
    expect(new CallBoardView(board.buffer).take(9)?.message).toMatchObject({ i: [1, 2] });
    scheduler.resolveEarly({
      early: true,
      c: [0],
      g: [1],
      o: encodeOutcomes([ok1(0)]),
    });
    expect(await first).toEqual(ok1(0));
    // Thread 9 dies running call 1: its piscina message fails, and its run port closes.
    posted[0]?.answer(Promise.reject(new Error('thread died')));
    await tick();
    scheduler.threadGone(9);
    await expect(rest[0]).rejects.toThrow('exited while running');
    expect(posted[1]?.message).toMatchObject({ c: 2 });
    posted[1]?.answer(ok1(2));
    expect(await rest[1]).toEqual(ok1(2));
    expect(board.freeEntry()).toBeGreaterThanOrEqual(0);
  });
});
