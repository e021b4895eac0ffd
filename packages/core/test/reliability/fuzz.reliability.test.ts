/**
 * Garbage in: fast-check values (JSON-like and `fc.anything()`), and values structured clone refuses or
 * chokes on (functions, symbols, class instances, cycles, huge strings, `__proto__` keys, BigInt, typed
 * arrays, deep nesting), sent to validated and unvalidated handlers, inline and in threads, by definition
 * and by name (unknown names too). Every call settles within a deadline with a result or a CqrsError whose
 * code belongs to its path; nothing rejects unhandled; `Object.prototype` stays clean on both sides; the
 * metrics add up. Runs against the built package and fixtures (`node build.mjs --fast` first).
 */
import type { CqrsError, ErrorCode } from '@cqrs-pool/core';
import { inWorker, isCqrsError, QueryBus, validation, WorkerPool } from '@cqrs-pool/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Echo, ProtoKeys, Strict, ThrowInput } from '../fixtures/reliabilityMessages.js';
import { fixtureUrl } from '../fixtureUrl.js';

const handlers = fixtureUrl('reliabilityHandlers');
const runs = Number(process.env.CQRS_FUZZ_RUNS ?? 400);
const deadlineMs = 10_000;

type Path = {
  /** Registered name on the bus. */
  name: string;
  /** Codes a call on this path may fail with. */
  codes: readonly ErrorCode[];
  /** The handler returns its input: a success must give it back. */
  echoes: boolean;
};

// One bus, six registrations: {echo, validated, thrower} × {inline, worker} (worker ones under the names
// their handle() exports carry). Inline handlers return/throw the very value; worker ones get a structured clone.
const paths: Record<string, Path> = {
  echoInline: { name: 'EchoInline', codes: [], echoes: true },
  echoWorker: { name: Echo.name, codes: ['NOT_CLONEABLE'], echoes: true },
  strictInline: { name: 'StrictInline', codes: ['VALIDATION'], echoes: false },
  strictWorker: { name: Strict.name, codes: ['VALIDATION', 'NOT_CLONEABLE'], echoes: false },
  throwInline: { name: 'ThrowInline', codes: ['HANDLER_FAILED'], echoes: false },
  throwWorker: { name: ThrowInput.name, codes: ['HANDLER_FAILED', 'NOT_CLONEABLE'], echoes: false },
};
const registered = new Set(Object.values(paths).map((p) => p.name));

let pool: WorkerPool;
let queries: QueryBus;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
// Ground truth for the metrics: calls to registered names, and how many of those rejected.
let calls = 0;
let rejections = 0;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  pool = new WorkerPool({ threads: 2 });
  queries = new QueryBus({ pool });
  const as = <D extends typeof Echo | typeof Strict | typeof ThrowInput>(def: D, name: string): D => ({
    ...def,
    name,
  });
  queries.registerHandler(as(Echo, 'EchoInline'), (input) => input);
  queries.registerHandler(Echo, inWorker(handlers, 'echo'));
  queries.registerHandler(as(Strict, 'StrictInline'), (input) => input, { middleware: [validation()] });
  queries.registerHandler(Strict, inWorker(handlers, 'strict'), {
    middleware: [validation()],
  });
  queries.registerHandler(as(ThrowInput, 'ThrowInline'), (input) => {
    throw input;
  });
  queries.registerHandler(ThrowInput, inWorker(handlers, 'throwInput'));
  queries.registerHandler(ProtoKeys, inWorker(handlers, 'protoKeys'));
  await queries.ready();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await queries?.close();
  await pool?.close();
});

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/** Settles like the call, or fails the test when the call is still pending after the deadline. */
async function settle(pending: Promise<unknown>, what: string): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race<Outcome | 'hang'>([
    pending.then(
      (value) => ({ ok: true, value }),
      (err: unknown) => ({ ok: false, err }),
    ),
    new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), deadlineMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'hang') throw new Error(`${what}: still pending after ${deadlineMs} ms`);
  return outcome;
}

/** Calls `path` with `input` (by name, or by a definition carrying its name) and checks the outcome. */
async function check(path: Path, input: unknown, byName: boolean): Promise<Outcome> {
  const def = { ...Echo, name: path.name };
  const pending = byName ? queries.execute(path.name, input) : queries.execute(def, input);
  calls++;
  const outcome = await settle(pending, path.name);
  if (!outcome.ok) {
    rejections++;
    if (!isCqrsError(outcome.err)) throw new Error(`${path.name}: not a CqrsError`, { cause: outcome.err });
    const code = (outcome.err as CqrsError).code;
    if (!path.codes.includes(code)) {
      throw new Error(`${path.name}: unexpected ${code}: ${(outcome.err as Error).message}`, {
        cause: outcome.err,
      });
    }
  }
  return outcome;
}

const allPaths = fc.constantFrom(...Object.values(paths));

describe('fuzzed input', () => {
  it('JSON values: every path settles with a result or its expected codes; echoes give the value back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), allPaths, fc.boolean(), async (value, path, byName) => {
        const outcome = await check(path, value, byName);
        // JSON always clones: only the validated paths may refuse, and only with VALIDATION.
        if (path.echoes) {
          expect(outcome.ok).toBe(true);
          if (outcome.ok) expect(outcome.value).toEqual(value);
        }
        if (!outcome.ok && path !== paths.throwInline && path !== paths.throwWorker) {
          expect((outcome.err as CqrsError).code).toBe('VALIDATION');
        }
      }),
      { numRuns: runs },
    );
  });

  it('fc.anything(): every path settles with a result or its expected codes', async () => {
    const anything = fc.anything({
      maxDepth: 4,
      maxKeys: 6,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    });
    await fc.assert(
      fc.asyncProperty(anything, allPaths, fc.boolean(), async (value, path, byName) => {
        await check(path, value, byName);
      }),
      { numRuns: runs },
    );
  });

  it('values that do not clone, or clone badly: every path settles with a result or its expected codes', async () => {
    class WithMethods {
      readonly n = 1;
      twice(): number {
        return this.n * 2;
      }
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    let deep: unknown = { leaf: true };
    for (let i = 0; i < 1000; i++) deep = { n: i, next: deep };
    let deepArray: unknown = [];
    for (let i = 0; i < 1000; i++) deepArray = [deepArray];
    const proto = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}}');
    const nasty: [string, unknown][] = [
      ['a function', () => 1],
      ['a symbol', Symbol('s')],
      ['an object holding a function', { n: 1, tag: 'x', flags: [], fn: () => 1 }],
      ['an object holding a symbol', { s: Symbol.iterator }],
      ['a class instance with methods', new WithMethods()],
      ['a cyclic object', cyclic],
      [
        'a cyclic array',
        (() => {
          const a: unknown[] = [1];
          a.push(a);
          return a;
        })(),
      ],
      ['__proto__ / constructor / prototype keys', proto],
      [
        '__proto__ key, validated shape',
        JSON.parse('{"n":1,"tag":"t","flags":[],"__proto__":{"polluted":3}}'),
      ],
      ['a BigInt', 10n ** 30n],
      [
        'typed arrays',
        { u8: new Uint8Array([1, 2, 3]), f64: new Float64Array(4), big: new BigInt64Array(2) },
      ],
      ['a SharedArrayBuffer', new Int32Array(new SharedArrayBuffer(16))],
      ['an Error', new TypeError('as input')],
      ['a WeakMap', new WeakMap()],
      ['a Promise', Promise.resolve(1)],
      ['a Proxy', new Proxy({}, {})],
      ['a MessageChannel port', new MessageChannel().port1],
      ['an object nested 1000 deep', deep],
      ['an array nested 1000 deep', deepArray],
      [
        'a getter that throws',
        Object.defineProperty({}, 'boom', {
          enumerable: true,
          get: () => {
            throw new Error('getter');
          },
        }),
      ],
      ['undefined', undefined],
      ['NaN', Number.NaN],
    ];
    const ports: InstanceType<typeof MessagePort>[] = [];
    for (const [what, value] of nasty) {
      if (value instanceof MessagePort) ports.push(value);
      for (const path of Object.values(paths)) {
        for (const byName of [true, false]) {
          try {
            await check(path, value, byName);
          } catch (err) {
            throw new Error(`${what} → ${path.name}: ${(err as Error).message}`, { cause: err });
          }
        }
      }
    }
    for (const port of ports) port.close();
  });

  it('huge strings (1–8 MB) cross and come back whole', async () => {
    for (const mb of [1, 4, 8]) {
      const huge = 'x'.repeat(mb * 1024 * 1024 - 1) + String(mb);
      for (const path of [paths.echoInline, paths.echoWorker, paths.throwWorker] as Path[]) {
        const outcome = await check(path, { huge }, true);
        if (path.echoes) {
          expect(outcome.ok).toBe(true);
          expect((outcome as { value: { huge: string } }).value.huge).toBe(huge);
        } else {
          expect(outcome.ok).toBe(false);
        }
      }
    }
  });

  it('unknown names settle with HANDLER_NOT_FOUND, whatever the input', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 40 }).filter((n) => !registered.has(n) && n !== ProtoKeys.name),
        fc.jsonValue({ maxDepth: 3 }),
        async (name, input) => {
          const outcome = await settle(queries.execute(name, input), `unknown '${name}'`);
          expect(outcome.ok).toBe(false);
          expect(isCqrsError((outcome as { err: unknown }).err, 'HANDLER_NOT_FOUND')).toBe(true);
        },
      ),
      { numRuns: runs },
    );
  });

  it('afterwards: no unhandled rejection, Object.prototype clean on both sides, the metrics add up', async () => {
    // Let stray rejections surface.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const inThreads = await Promise.all([queries.execute(ProtoKeys, {}), queries.execute(ProtoKeys, {})]);
    for (const keys of inThreads) expect(keys).toEqual(prototypeBefore);
    calls += 2;
    const metrics = queries.getMetrics();
    expect(metrics.inFlight).toBe(0);
    expect({ executions: metrics.executions, failures: metrics.failures }).toEqual({
      executions: calls,
      failures: rejections,
    });
    expect(pool.threads).toBe(2);
    console.log(`fuzz: ${calls} calls to registered handlers, ${rejections} rejected`);
  });
});
