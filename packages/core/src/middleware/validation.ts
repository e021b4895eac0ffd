import type { z } from 'zod';
import { CqrsError } from '../errors/CqrsError.js';
import { isStreamQuery } from '../messages/defineStreamQuery.js';
import { producesCodes } from './failureCodes.js';
import type { Call, Middleware, Next } from './Middleware.js';
import { validatedItems } from './validatedItems.js';

/** Options of {@link validation}. */
export interface ValidationOptions {
  /**
   * Also parse the handler's result with the definition's `output` schema (when it declares one), and pass
   * the parsed result on — for a streaming query, each item with its `item` schema (synchronously). Default
   * false: the result is typed by the schema but not checked.
   */
  output?: boolean;
}

type SafeParseResult = z.ZodSafeParseResult<unknown>;
type Issue = z.core.$ZodIssue;
type Checked = 'input' | 'output' | 'payload';

/**
 * Parses each call's input with its definition's zod `input` schema, on the main thread, before anything
 * inside this middleware runs. The handler receives the *parsed* value, so defaults and transforms apply.
 * With `{ output: true }` the result is parsed with the definition's `output` schema too (if it has one);
 * a streaming query's items each with its `item` schema, as they arrive: at the first bad item the handler
 * is stopped and the stream ends with `VALIDATION` after the items before it. Schemas with async
 * refinements are supported (parsed with `safeParseAsync`), except for stream items.
 *
 * Place it inside `retry` (a `VALIDATION` failure is never retried, it would fail the same way) and
 * anywhere relative to the metrics recording: a call refused here counts as an execution and a failure.
 *
 * @example
 * ```ts
 * const commands = new CommandBus({ pool, middleware: [validation()] });
 * await commands.execute(CreateUser, { userId: 0, username: 'x', email: 'nope' });
 * // → rejects with CqrsError VALIDATION: "CreateUser: invalid input at userId: Too small: … (and 2 more issues)"
 * ```
 * @throws CqrsError `INVALID_REGISTRATION` (at once) when `options.output` is not a boolean.
 * @returns a middleware whose calls reject with CqrsError `VALIDATION` (message naming the handler and the
 * first issue's path, `issues` holding every zod issue, `handler` the name) when the input — or, with
 * `output: true`, the result — fails its schema; the handler is not called for a bad input. A schema that
 * throws (a refinement with a bug) is reported as `VALIDATION` too, with the thrown error as `cause`.
 */
export function validation(options: ValidationOptions = {}): Middleware {
  const { output = false } = options;
  if (typeof output !== 'boolean') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `validation: options.output must be a boolean, got ${String(output)}`,
    );
  }
  const middleware: Middleware = (next, chain) => {
    const name = chain.name;
    const inputSchema = chain.definition.input;
    const outputSchema = output ? chain.definition.output : undefined;
    // The handler ran and was counted a success; the caller gets VALIDATION, so the count must say failure.
    // A claimed ticket means a recording layer outside this middleware counts the call and the handler's
    // terminal already counted it (a ticket nobody claimed is counted by that layer from our rejection).
    const recountAsFailure = (call: Call, err: unknown): void => {
      if (call.ticket?.claimed !== true) return;
      const slot = chain.shared.handlerSlot();
      chain.shared.region.recordLateFailure(slot);
      chain.shared.region.recordFailureCode(slot, err);
    };
    const checkResult = (call: Call, result: unknown): unknown => {
      const schema = outputSchema as z.ZodType;
      let parsed: SafeParseResult;
      try {
        parsed = schema.safeParse(result);
      } catch {
        return parseAsync(schema, result, name, 'output').then(undefined, (err: unknown) => {
          recountAsFailure(call, err);
          throw err;
        });
      }
      if (parsed.success) return parsed.data;
      const err = invalid(name, 'output', parsed.error.issues);
      recountAsFailure(call, err);
      throw err;
    };
    const withOutputCheck =
      outputSchema === undefined
        ? (_call: Call, pending: Promise<unknown>): Promise<unknown> => pending
        : (call: Call, pending: Promise<unknown>): Promise<unknown> =>
            pending.then((result) => checkResult(call, result));
    const itemSchema = output && isStreamQuery(chain.definition) ? chain.definition.item : undefined;
    /** Runs the rest of the chain with the parsed input (and, for checked stream items, a checking sink). */
    const proceed: (call: Call, input: unknown) => Promise<unknown> =
      itemSchema === undefined
        ? (call, input) => next({ ...call, input })
        : (call, input) => withItemCheck(next, call, input, itemSchema, name, recountAsFailure);
    return (call) => {
      let parsed: SafeParseResult;
      try {
        parsed = inputSchema.safeParse(call.input);
      } catch {
        const input = parseAsync(inputSchema, call.input, name, 'input');
        return withOutputCheck(
          call,
          input.then((value) => proceed(call, value)),
        );
      }
      if (!parsed.success) return Promise.reject(invalid(name, 'input', parsed.error.issues));
      return withOutputCheck(call, proceed(call, parsed.data));
    };
  };
  return producesCodes(middleware, ['VALIDATION']);
}

/** A stream call whose items are parsed on their way to the consumer (see validatedItems.ts). */
function withItemCheck(
  next: Next,
  call: Call,
  input: unknown,
  schema: z.ZodType,
  name: string,
  recountAsFailure: (call: Call, err: unknown) => void,
): Promise<unknown> {
  if (call.stream === undefined) return next({ ...call, input });
  const checked = validatedItems(call.stream, schema, name, (issues) => invalidItem(name, issues));
  return next({ ...call, input, stream: checked.sink }).then((value) => {
    const failure = checked.failure();
    if (failure === undefined) return value;
    recountAsFailure(call, failure);
    throw failure;
  });
}

function invalidItem(name: string, issues: readonly Issue[]): CqrsError {
  const err = invalid(name, 'output', issues);
  return new CqrsError(
    'VALIDATION',
    err.message.replace('returned an invalid output', 'yielded an invalid item'),
    {
      issues,
      handler: name,
    },
  );
}

/**
 * Parses `value` with `schema` as this middleware parses an input (`what` names it in messages): zod's result,
 * or — for a schema with async refinements — a promise of the parsed value that rejects with `VALIDATION`.
 * A failed result becomes an error with {@link invalid}. The event bus parses payloads with it.
 * @internal
 */
export function parseValue(
  schema: z.ZodType,
  value: unknown,
  name: string,
  what: Checked,
): SafeParseResult | Promise<unknown> {
  try {
    return schema.safeParse(value);
  } catch {
    return parseAsync(schema, value, name, what);
  }
}

/**
 * The slow path, after `safeParse` threw. zod throws there when a refinement is async; retrying with
 * `safeParseAsync` on any throw, rather than testing for `$ZodAsyncError`, works whichever copy of zod made
 * the schema. A refinement that simply throws throws again here and is reported as such.
 */
async function parseAsync(schema: z.ZodType, value: unknown, name: string, what: Checked): Promise<unknown> {
  let parsed: SafeParseResult;
  try {
    parsed = await schema.safeParseAsync(value);
  } catch (err) {
    throw schemaThrew(name, what, err);
  }
  if (!parsed.success) throw invalid(name, what, parsed.error.issues);
  return parsed.data;
}

/** `VALIDATION` naming the handler and the first issue's path; `issues` holds them all. @internal */
export function invalid(name: string, what: Checked, issues: readonly Issue[]): CqrsError {
  const first = issues[0];
  const where = first === undefined ? '' : ` at ${formatPath(first.path)}: ${first.message}`;
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? 's' : ''})` : '';
  const whose = what === 'output' ? 'the handler returned an invalid output' : `invalid ${what}`;
  return new CqrsError('VALIDATION', `${name}: ${whose}${where}${more}`, { issues, handler: name });
}

function schemaThrew(name: string, what: Checked, err: unknown): CqrsError {
  const detail = err instanceof Error ? err.message : String(err);
  return new CqrsError('VALIDATION', `${name}: the ${what} schema threw: ${detail}`, {
    cause: err,
    issues: [],
    handler: name,
  });
}

/** `items[0].name`, or `(root)` for an issue about the value itself. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'symbol') out += `[${String(key)}]`;
    else out += out === '' ? key : `.${key}`;
  }
  return out;
}
