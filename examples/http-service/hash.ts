import { scryptSync } from 'node:crypto';

/** scrypt cost: N = 2^11, r = 8 takes about 5 ms of CPU (and 2 MiB of memory) per call. */
const cost = { N: 1 << 11, r: 8, p: 1 };

/**
 * The CPU-heavy work behind POST /hash, one function for the three variants of the service: the inline
 * handler, the pool's worker handler and the raw piscina worker all call it.
 */
export function hashPassword(input: { userId: number; password: string }): { userId: number; hash: string } {
  const key = scryptSync(input.password, `user-${input.userId}`, 32, cost);
  return { userId: input.userId, hash: key.toString('hex') };
}
