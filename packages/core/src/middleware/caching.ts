import { LRUCache } from 'lru-cache';
import { CqrsError } from '../errors/CqrsError.js';
import type { Metadata } from '../handler/HandlerContext.js';
import type { Definition } from '../messages/Definition.js';
import { isStreamQuery } from '../messages/defineStreamQuery.js';
import { abortErrorFor } from '../util/abortError.js';
import { abortReason, canAbort, isAborted, onAbort } from '../util/callAbort.js';
import type { Call, Middleware, Next } from './Middleware.js';
import { newCall } from './newCall.js';
import { queryOnly } from './queryOnly.js';
import { stableKey } from './stableKey.js';

/** Options of {@link caching}. */
export interface CachingOptions {
  /**
   * How long a result is served from the cache, in milliseconds, counted from when it was stored (a hit does
   * not extend it). Must be > 0; `Infinity` keeps entries until evicted or invalidated.
   */
  ttlMs: number;
  /** Most entries kept, over all the handlers this instance wraps; the least recently used leaves first. Default 1000. */
  max?: number;
  /**
   * The cache key of a call's input, instead of the default (a deterministic serialization of the input, see
   * below). Return `undefined` to run that call uncached. Use it when a result depends on more than the input
   * — the tenant or user in `call.metadata`, which the default key ignores — or to key a large input by the
   * fields that matter. `invalidate(def, input, metadata)` calls it with a call built from its arguments.
   */
  key?: (input: unknown, call: Call) => string | undefined;
  /** The clock TTLs are measured with, in milliseconds (default `performance`); for tests. */
  clock?: { now(): number };
}

/** The middleware {@link caching} returns: a `Middleware` that can also drop what it holds. */
export type CachingMiddleware = Middleware & {
  /**
   * Drops cached results of one query handler (by definition or name): the entry of `input` when given (with
   * a custom `key`, keyed with `metadata` as the call's metadata), else every entry of that handler. An
   * execution of a dropped entry still in flight is not stored when it settles, and later calls do not join it.
   */
  invalidate(definitionOrName: Definition | string, input?: unknown, metadata?: Metadata): void;
  /** Drops every entry, of every handler this instance wraps, and detaches executions in flight. */
  clear(): void;
};

/** One execution shared by the identical calls that arrived while it ran. */
interface Flight {
  readonly key: string;
  promise: Promise<unknown>;
  /** Invalidated while running: its result is handed to its waiters but not stored. */
  stale: boolean;
  /** Some waiter cannot abort (it has no signal): the execution runs to its end whatever the others do. */
  pinned: boolean;
  /** Waiters with a signal that have not aborted. */
  live: number;
  /** Aborts the execution once every waiter has aborted; present when it can happen. */
  readonly controller: AbortController | undefined;
}

// lru-cache stores no `undefined`; a query may well return it.
const UNDEFINED = Symbol('cached undefined');
const noMetadata: Metadata = Object.freeze({});

/**
 * Caches query results in memory on the main thread, keyed by handler and input, so a hit never reaches the
 * handler (or its pool thread). Queries only: a `CommandBus` refuses it with `INVALID_REGISTRATION`.
 *
 * - One LRU (lru-cache) per `caching()` instance, shared by the handlers it wraps; `ttlMs`, `max`.
 * - Identical calls in flight are coalesced: the first runs the handler, the others wait for its result. A
 *   waiter whose own signal aborts is released at once with `ABORTED` (or `TIMEOUT`, the timeout's reason);
 *   the execution goes on for the others. When every waiter has aborted, the execution is aborted too (its
 *   handler sees `ctx.signal` abort, which is how a `timeout()` outside this middleware still cancels it),
 *   and nothing is stored. When any waiter came without a signal, the execution always runs to its end.
 *   The execution runs with the first caller's metadata.
 * - Errors are never cached: a failed execution rejects all its waiters, and the next call runs again.
 * - The default key ignores `call.metadata`: when results depend on the caller (tenant, user), pass a `key`
 *   that includes it. Inputs the default key cannot serialize (functions, symbols, cycles, class
 *   instances) run uncached.
 * - Streaming queries (`defineStreamQuery`) are passed through, never cached or coalesced: their items go
 *   to one consumer as they are produced.
 * - Results are shared, not copied: every hit gets the same object. Do not mutate a query's result.
 * - With the default key, the execution a miss starts gets a copy of the input taken with the key, so it
 *   answers exactly the input the key describes, whatever the caller does with its object afterwards. A
 *   custom `key` reads the input as it is; its handler gets the caller's object.
 * - Hits count as executions in `getMetrics()` when the metrics recording is outside this middleware (the
 *   default); they have no latency sample. A waiter released by its own abort is counted with the outcome
 *   of the shared execution when it was the one that started it.
 *
 * @throws CqrsError `INVALID_REGISTRATION` for a bad option (`ttlMs` ≤ 0 or not a number, `max` not a
 * positive integer, `key` not a function). Calls can reject with `ABORTED` (or the signal's reason) and
 * whatever the handler's chain rejects with; an error thrown by `key` rejects the call with that error.
 */
export function caching(options: CachingOptions): CachingMiddleware {
  const { ttlMs, max = 1000, key: customKey, clock } = checkOptions(options);
  const lru = new LRUCache<string, NonNullable<unknown>>({
    max,
    // lru-cache counts whole milliseconds; 0 means no expiry.
    ...(ttlMs === Number.POSITIVE_INFINITY ? {} : { ttl: Math.ceil(ttlMs) }),
    // An injected clock is read on every check. Otherwise lru-cache reuses a reading for 1 ms (by a timer),
    // which keeps a hit cheaper than a clock read per hit would (measured: ~150 vs ~200 ns a lookup).
    ...(clock === undefined ? {} : { perf: clock, ttlResolution: 0 }),
  });
  const flights = new Map<string, Flight>();
  /** The definition of each handler composed with this instance: what `invalidate(name, input)` keys with. */
  const definitions = new Map<string, Definition>();

  const keyOf = (input: unknown, call: Call): string | undefined =>
    customKey === undefined ? stableKey(input) : customKey(input, call);

  /** Starts the execution the calls with this key will share. */
  const take = (next: Next, call: Call, key: string): Flight => {
    const controller = canAbort(call) ? new AbortController() : undefined;
    const flight: Flight = {
      key,
      promise: undefined as unknown as Promise<unknown>,
      stale: false,
      pinned: controller === undefined,
      live: 0,
      controller,
    };
    let running: Promise<unknown>;
    try {
      // Only overrides of existing keys: the copy stays on V8's fast path. The shared execution answers to
      // this controller alone, not to the first caller's timeout token.
      running = next(
        controller === undefined ? call : { ...call, signal: controller.signal, cancel: undefined },
      );
    } catch (err) {
      running = Promise.reject(err);
    }
    flight.promise = running.then(
      (value) => {
        land(flight);
        if (!flight.stale) lru.set(key, value === undefined ? UNDEFINED : (value as NonNullable<unknown>));
        return value;
      },
      (err: unknown) => {
        land(flight);
        throw err;
      },
    );
    flights.set(key, flight);
    return flight;
  };

  const land = (flight: Flight): void => {
    if (flights.get(flight.key) === flight) flights.delete(flight.key);
  };

  /** A waiter of `flight`: its result, unless this waiter's own signal aborts first. */
  const join = (flight: Flight, call: Call, name: string): Promise<unknown> => {
    if (!canAbort(call)) {
      flight.pinned = true;
      return flight.promise;
    }
    flight.live++;
    return new Promise((resolve, reject) => {
      let released = false;
      const aborted = (): void => {
        if (released) return;
        released = true;
        const reason = abortReason(call);
        reject(abortErrorFor(reason, name));
        if (--flight.live === 0 && !flight.pinned) {
          // Nobody is left to want the result: stop the handler, and let the next call start afresh.
          flight.stale = true;
          land(flight);
          flight.controller?.abort(reason);
        }
      };
      const unsubscribe = onAbort(call, aborted);
      flight.promise.then(
        (value) => {
          unsubscribe();
          released = true;
          resolve(value);
        },
        (err: unknown) => {
          unsubscribe();
          released = true;
          reject(err);
        },
      );
    });
  };

  const middleware: Middleware = (next, chain) => {
    // A stream is not a value to keep: its items go to one consumer as they come. Passed through untouched.
    if (isStreamQuery(chain.definition)) return next;
    const name = chain.name;
    definitions.set(name, chain.definition);
    const prefix = prefixOf(name);
    const { region } = chain.shared;
    // The handler's metrics slot, looked up on the first hit that counts (a call with a ticket has one).
    let slot = -1;
    return (call) => {
      // Through callAbort: under a timeout, reading `call.signal` would not see it (see CancelToken.ts).
      if (isAborted(call)) return Promise.reject(abortErrorFor(abortReason(call), name));
      let inputKey: string | undefined;
      try {
        inputKey = keyOf(call.input, call);
      } catch (err) {
        return Promise.reject(err);
      }
      if (inputKey === undefined) return next(call);
      const key = prefix + inputKey;
      const hit = lru.get(key);
      if (hit !== undefined) {
        const answer = Promise.resolve(hit === UNDEFINED ? undefined : hit);
        // Counted here, and the ticket says so: when nothing outside this middleware wraps the answer, the
        // bus ends the call at once instead of through a continuation (about a third of a hit's cost).
        const ticket = call.ticket;
        if (ticket !== undefined && !ticket.claimed) {
          ticket.claimed = true;
          ticket.settledBy = answer;
          if (slot < 0) slot = chain.shared.handlerSlot();
          region.recordCount(slot, false);
        }
        return answer;
      }
      const flight = flights.get(key);
      if (flight !== undefined) return join(flight, call, name);
      return join(take(next, customKey === undefined ? snapshot(call) : call, key), call, name);
    };
  };

  const detach = (flight: Flight): void => {
    flight.stale = true;
    land(flight);
  };

  const invalidate = (definitionOrName: Definition | string, ...rest: [unknown?, Metadata?]): void => {
    const name = typeof definitionOrName === 'string' ? definitionOrName : definitionOrName?.name;
    if (typeof name !== 'string') {
      throw new CqrsError('INVALID_REGISTRATION', 'invalidate(): pass a query definition or its name');
    }
    const prefix = prefixOf(name);
    if (rest.length === 0) {
      // O(entries): fine for a bounded LRU; invalidation follows writes, not reads.
      const doomed: string[] = [];
      for (const key of lru.keys()) if (key.startsWith(prefix)) doomed.push(key);
      for (const key of doomed) lru.delete(key);
      for (const [key, flight] of flights) if (key.startsWith(prefix)) detach(flight);
      return;
    }
    // Nothing was ever cached for a handler this instance was not composed for.
    const definition = definitions.get(name);
    if (definition === undefined) return;
    const [input, metadata = noMetadata] = rest;
    const inputKey = keyOf(input, newCall(definition, input, metadata, name));
    if (inputKey === undefined) return;
    const key = prefix + inputKey;
    lru.delete(key);
    const flight = flights.get(key);
    if (flight !== undefined) detach(flight);
  };

  const clear = (): void => {
    lru.clear();
    for (const flight of flights.values()) flight.stale = true;
    flights.clear();
  };

  return Object.assign(queryOnly(middleware, 'caching()'), { invalidate, clear }) as CachingMiddleware;
}

/**
 * The call with a copy of its input as it is now, when its key was taken. The execution a key starts answers
 * every later call with that key, so its handler must see exactly the input the key describes — not the
 * caller's object as it is when the call finally reaches the handler (a call waiting for a pool thread is
 * cloned only when it leaves, and a caller may change its object meanwhile). Only on a miss, and only for
 * the default key, which accepts nothing structured clone would change (see stableKey.ts).
 */
function snapshot(call: Call): Call {
  const input = call.input;
  if (typeof input !== 'object' || input === null) return call;
  // Only an override of an existing key: the copy stays on V8's fast path.
  return { ...call, input: structuredClone(input) };
}

/** The handler part of a cache key: JSON-quoted, so it ends unambiguously whatever the input key holds. */
function prefixOf(name: string): string {
  return `${JSON.stringify(name)}:`;
}

function checkOptions(options: CachingOptions): CachingOptions {
  if (typeof options !== 'object' || options === null) {
    throw new CqrsError('INVALID_REGISTRATION', 'caching(): options { ttlMs } are required');
  }
  const { ttlMs, max, key, clock } = options;
  if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs <= 0) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `caching(): options.ttlMs must be a number of milliseconds > 0 (Infinity for no expiry), got ${String(ttlMs)}`,
    );
  }
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `caching(): options.max must be a positive integer, got ${String(max)}`,
    );
  }
  if (key !== undefined && typeof key !== 'function') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'caching(): options.key must be a function (input, call) => string',
    );
  }
  if (clock !== undefined && typeof clock?.now !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', 'caching(): options.clock must have a now() method');
  }
  return options;
}
