import { isCqrsError } from '@cqrs-pool/core';

/**
 * The delay before the next attempt after `deliveries` attempts failed transiently: `baseDelayMs × 2^(n-1)`,
 * capped at `maxDelayMs`, ± 20 % (so messages that failed together do not come back together), and never
 * less than an error's `retryAfterMs` (`CIRCUIT_OPEN`, `RATE_LIMITED`).
 * @internal
 */
export function retryDelay(
  deliveries: number,
  err: unknown,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(deliveries - 1, 0), 30);
  const nominal = Math.min(maxDelayMs, baseDelayMs * 2 ** exponent);
  const jittered = Math.round(nominal * (0.8 + 0.4 * random()));
  const retryAfter = isCqrsError(err) && typeof err.retryAfterMs === 'number' ? err.retryAfterMs : 0;
  return Math.max(jittered, Math.ceil(retryAfter));
}
