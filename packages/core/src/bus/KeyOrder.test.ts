import { describe, expect, it } from 'vitest';
import { KeyOrder, type KeyOrderSink } from './KeyOrder.js';

const call = { signal: undefined, cancel: undefined };

function sink(room = Number.POSITIVE_INFINITY) {
  const seen = { waiting: 0, granted: [] as number[] };
  const s: KeyOrderSink = {
    startWaiting: () => {
      if (seen.waiting >= room) return false;
      seen.waiting++;
      return true;
    },
    stopWaiting: () => {
      seen.waiting--;
    },
    granted: (ms) => {
      seen.granted.push(ms);
    },
  };
  return { s, seen };
}

describe('KeyOrder', () => {
  it('grants a free key at once and the next call of the key when the holder is done', async () => {
    const order = new KeyOrder();
    const { s, seen } = sink();
    const a = order.enter('k', s);
    const b = order.enter('k', s);
    expect(a?.holding).toBe(true);
    expect(b?.holding).toBe(false);
    expect(seen.waiting).toBe(1);
    const turn = b?.turn(call, 'H');
    a?.begin();
    a?.settle();
    // Still running its handler: the key stays held.
    expect(b?.holding).toBe(false);
    a?.end();
    await turn;
    expect(b?.holding).toBe(true);
    expect(seen.waiting).toBe(0);
    expect(seen.granted).toHaveLength(2);
    b?.settle();
    expect(order.size).toBe(0);
  });

  it('skips calls that left while they waited, and frees the lane when only they were behind', () => {
    const order = new KeyOrder();
    const { s, seen } = sink();
    const a = order.enter(1, s);
    const b = order.enter(1, s);
    const c = order.enter(1, s);
    const d = order.enter(1, s);
    b?.settle();
    d?.settle();
    expect(seen.waiting).toBe(1);
    a?.settle();
    expect(c?.holding).toBe(true);
    c?.settle();
    expect(order.size).toBe(0);
    // A lane whose tail left: still freed when its holder is done.
    const e = order.enter(2, s);
    const f = order.enter(2, s);
    f?.settle();
    e?.settle();
    expect(order.size).toBe(0);
    expect(seen.waiting).toBe(0);
  });

  it('refuses a call that would wait when the sink has no room; a free key needs none', () => {
    const order = new KeyOrder();
    const { s } = sink(1);
    expect(order.enter('x', s)).toBeDefined();
    expect(order.enter('x', s)).toBeDefined();
    expect(order.enter('x', s)).toBeUndefined();
    expect(order.enter('y', s)).toBeDefined();
  });

  it('rejects a waiting turn when its call aborts, and the call behind it keeps its place', async () => {
    const order = new KeyOrder();
    const controller = new AbortController();
    const a = order.enter('k', undefined);
    const b = order.enter('k', undefined);
    const c = order.enter('k', undefined);
    const waiting = b?.turn({ signal: controller.signal, cancel: undefined }, 'H');
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    b?.settle();
    a?.settle();
    expect(c?.holding).toBe(true);
  });

  it('leaves nothing behind after a million distinct keys', () => {
    const order = new KeyOrder();
    for (let i = 0; i < 1_000_000; i++) {
      const ticket = order.enter(i, undefined);
      ticket?.begin();
      ticket?.end();
      ticket?.settle();
    }
    expect(order.size).toBe(0);
  });
});
