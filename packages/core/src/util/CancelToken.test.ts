import { describe, expect, it } from 'vitest';
import { CancelToken } from './CancelToken.js';
import { listenAbort, offAbort, onAbort } from './callAbort.js';

describe('CancelToken', () => {
  it('tells each listener once, in the order they came, functions and handleEvent objects alike', () => {
    const token = new CancelToken();
    const told: string[] = [];
    token.listen(() => told.push('a'));
    token.listen({ handleEvent: () => told.push('b') });
    onAbort({ cancel: token, signal: undefined }, () => told.push('c'));
    token.abort('why');
    token.abort('again');
    expect(told).toEqual(['a', 'b', 'c']);
    expect(token.reason).toBe('why');
  });

  it('keeps the order of the others when a listener is taken off, the first included', () => {
    const token = new CancelToken();
    const told: string[] = [];
    const first = { handleEvent: () => told.push('first') };
    const second = () => told.push('second');
    const third = { handleEvent: () => told.push('third') };
    token.listen(first);
    token.listen(second);
    token.listen(third);
    token.unlisten(first);
    token.listen({ handleEvent: () => told.push('fourth') });
    const unsubscribe = onAbort({ cancel: token, signal: undefined }, () => told.push('fifth'));
    unsubscribe();
    token.unlisten(() => told.push('never on'));
    token.abort(undefined);
    expect(told).toEqual(['second', 'third', 'fourth']);
  });

  it('tells no listener that came after the abort', () => {
    const token = new CancelToken();
    token.abort('done');
    const told: string[] = [];
    token.listen(() => told.push('late'));
    onAbort({ cancel: token, signal: undefined }, () => told.push('late too'))();
    expect(told).toEqual([]);
  });

  it('is what listenAbort and offAbort use for a call under a timeout, and an AbortSignal otherwise', () => {
    const told: string[] = [];
    const handler = { handleEvent: () => told.push('token') };
    const token = new CancelToken();
    listenAbort({ cancel: token, signal: undefined }, handler);
    offAbort({ cancel: token, signal: undefined }, handler);
    token.abort('x');
    const controller = new AbortController();
    const onSignal = { handleEvent: () => told.push('signal') };
    listenAbort({ cancel: undefined, signal: controller.signal }, onSignal);
    controller.abort();
    controller.abort();
    const other = new AbortController();
    const off = { handleEvent: () => told.push('taken off') };
    listenAbort({ cancel: undefined, signal: other.signal }, off);
    offAbort({ cancel: undefined, signal: other.signal }, off);
    other.abort();
    expect(told).toEqual(['signal']);
  });
});
