/**
 * Which inline calls are timed. A clock read costs more than the rest of a call's recording together (two
 * `performance.now()` reads are ~120–160 ns on a VM whose clock is not read in user space, more than the
 * whole dispatch), so once a handler has a history its latency is sampled: every call of its first 1024,
 * then one in 32. Counts stay exact; only the latency histogram is a sample, and a uniform sample keeps its
 * quantiles unbiased (a handler called 10,000 times a second still gives ~300 timings a second).
 * @internal
 */
export function timesCall(calls: number): boolean {
  return calls < 1024 || (calls & 31) === 0;
}
