/** Milliseconds from some fixed origin; injected into time-dependent logic so tests can drive it. */
export type Clock = () => number;

/**
 * The default clock of shared-memory state: wall-clock milliseconds with sub-millisecond resolution.
 * `performance.now()` alone will not do: each worker thread counts it from its own start, while times
 * stored in shared memory are compared across threads.
 */
export const wallClock: Clock = () => performance.timeOrigin + performance.now();
