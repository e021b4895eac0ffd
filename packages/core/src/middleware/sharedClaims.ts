import { CqrsError } from '../errors/CqrsError.js';
import type { ChainContext } from './Middleware.js';

// Claims on shared-memory state, by chain and by region. A region outlives buses (a pool's region serves
// every bus on the pool), so a claim is never given back: a handler re-registered on a new bus of the same
// pool must use the same settings.
const byChain = new WeakMap<ChainContext, Set<string>>();
const byRegion = new WeakMap<object, Map<string, string>>();

/**
 * Claims the `state` word(s) of `slot` for a built-in middleware being composed into `chain`, refusing what
 * would drive one word by two sets of rules: a second claim on the same chain (a second breaker would count
 * every failure twice, a second limiter would spend the same budget twice), or a claim with other `settings`
 * on a slot another chain already drives (two rates applied to one GCRA word give neither).
 * @throws CqrsError `INVALID_REGISTRATION`.
 * @internal
 */
export function claimSharedState(
  chain: ChainContext,
  label: string,
  state: string,
  slot: number,
  settings: string,
): void {
  const key = `${state}@${slot}`;
  let claims = byChain.get(chain);
  if (claims === undefined) {
    claims = new Set();
    byChain.set(chain, claims);
  }
  if (claims.has(key)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${label}: ${chain.name} already has a ${state} on this shared state; use one per handler`,
      { handler: chain.name },
    );
  }
  const region = chain.shared.region;
  let held = byRegion.get(region);
  if (held === undefined) {
    held = new Map();
    byRegion.set(region, held);
  }
  const previous = held.get(key);
  if (previous !== undefined && previous !== settings) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${label}: ${chain.name} shares its ${state} state with a ${state} of other settings (${previous}); ` +
        `give every ${state} on it the same settings`,
      { handler: chain.name },
    );
  }
  claims.add(key);
  held.set(key, settings);
}
