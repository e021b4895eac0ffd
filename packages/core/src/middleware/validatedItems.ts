import type { z } from 'zod';
import type { StreamProducer, StreamSink } from '../bus/StreamSink.js';
import { CqrsError } from '../errors/CqrsError.js';

/** A stream's sink that parses each item on its way in, and the first failure met. */
export interface ValidatedItems {
  readonly sink: StreamSink;
  /** The `VALIDATION` error of the first item that failed its schema, once one did. */
  readonly failure: () => CqrsError | undefined;
}

/**
 * Wraps the sink of a streaming call so that each item is parsed with the definition's `item` schema before
 * the consumer can see it (`validation({ output: true })`): parsed values go on (defaults and transforms
 * apply); at the first item that fails, the items before it go on, the producer is stopped, and `failure`
 * holds the error the call must end with. Synchronous parsing only: an item schema with async refinements
 * fails the stream with `VALIDATION` (items arrive in chunks that cannot wait for a promise each).
 * @internal
 */
export function validatedItems(
  sink: StreamSink,
  schema: z.ZodType,
  name: string,
  invalid: (issues: readonly z.core.$ZodIssue[]) => CqrsError,
): ValidatedItems {
  let failure: CqrsError | undefined;
  let producer: StreamProducer | undefined;
  /** The parsed item, or undefined after setting `failure`. */
  const parse = (item: unknown): { value: unknown } | undefined => {
    let parsed: z.ZodSafeParseResult<unknown>;
    try {
      parsed = schema.safeParse(item);
    } catch (err) {
      failure = new CqrsError(
        'VALIDATION',
        `${name}: the item schema threw (async refinements cannot check stream items): ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err, issues: [], handler: name },
      );
      return undefined;
    }
    if (parsed.success) return { value: parsed.data };
    failure = invalid(parsed.error.issues);
    return undefined;
  };
  const fail = (): void => producer?.stop();
  const wrapped: StreamSink = {
    get highWaterMark() {
      return sink.highWaterMark;
    },
    get delivered() {
      return sink.delivered;
    },
    get stopped() {
      return sink.stopped || failure !== undefined;
    },
    push(items) {
      if (failure !== undefined) return;
      let out: unknown[] | undefined;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const parsed = parse(item);
        if (parsed === undefined) {
          // The items before the bad one (parsed, or as they were when parsing changed none).
          const good = out ?? items.slice(0, i);
          if (good.length > 0) sink.push(good);
          fail();
          return;
        }
        if (parsed.value !== item && out === undefined) out = items.slice(0, i);
        out?.push(parsed.value);
      }
      sink.push(out ?? items);
    },
    pushOne(item) {
      if (failure !== undefined) return;
      const parsed = parse(item);
      if (parsed === undefined) fail();
      else sink.pushOne(parsed.value);
    },
    connect(next) {
      producer = next;
      return sink.connect(next);
    },
    meter(region, slot) {
      sink.meter(region, slot);
    },
  };
  return { sink: wrapped, failure: () => failure };
}
