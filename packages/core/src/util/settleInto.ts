/** What {@link settleInto} hands a new promise's settlers to. @internal */
export interface Settlers<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/**
 * A new promise whose settlers go to `holder`, made without an executor closure (and its context) per call:
 * for the objects that keep a call's whole state, on paths where each object per call is garbage-collection
 * work. (`Promise.withResolvers` would make an object more, and is not in Node 20.)
 * @internal
 */
export function settleInto<T>(holder: Settlers<T>): Promise<T> {
  const promise = new Promise<T>(
    capture as (resolve: (value: T) => void, reject: (err: unknown) => void) => void,
  );
  holder.resolve = capturedResolve as (value: T) => void;
  holder.reject = capturedReject;
  return promise;
}

// The executor hands the settlers over here, where `settleInto` takes them at once (a Promise runs its
// executor synchronously).
let capturedResolve: (value: unknown) => void = noop;
let capturedReject: (err: unknown) => void = noop;
function capture(resolve: (value: unknown) => void, reject: (err: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

function noop(): void {}
