import type { CqrsError } from './CqrsError.js';

// A registry symbol: the mark must be recognised by any copy of core (the nats package may bundle its own).
const mark = Symbol.for('cqrs-pool.forwarded');

/**
 * Marks `err` as the outcome of a call that a forwarding handler (a remote one, `@cqrs-pool/nats`) ran
 * elsewhere: the inline terminal then passes it to the caller as it is, instead of wrapping it in
 * `HANDLER_FAILED` — a `VALIDATION` on the serving node stays a `VALIDATION` on the calling one.
 * @internal
 */
export function markForwarded(err: CqrsError): CqrsError {
  Object.defineProperty(err, mark, { value: true, enumerable: false, configurable: true });
  return err;
}

/** True when {@link markForwarded} marked `err`. @internal */
export function isForwarded(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [mark]?: unknown })[mark] === true;
}
