import { z } from 'zod';
import { parseDuration } from './parseDuration.js';

// A time field of a configuration can be written two ways: `timeout_ms: 30000` (a number of milliseconds,
// as in the JSON files) or `timeout: 30s` (a duration string, as go-cqrs's YAML files write it). The schema
// declares both; `mergeDurations` then keeps one, under the `_ms` name, so the rest of the code only ever
// reads milliseconds. Giving both for one field is refused: which one wins would be a guess.

const hint = 'write a number and a unit: 500ms, 30s, 10m, 1h or terms like 1m30s';

/**
 * A duration string (`"30s"`), parsed to milliseconds and then held to `rule`, the same rule as its `_ms`
 * twin, so `ttl: 0s` fails as `ttl_ms: 0` does, naming `ttl`.
 */
export function duration(rule: z.ZodNumber) {
  return z
    .string({ error: (issue) => `invalid duration ${JSON.stringify(issue.input)}: ${hint}` })
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `invalid duration ${JSON.stringify(text)}: ${hint}`,
          input: text,
        });
        return z.NEVER;
      }
      return ms;
    })
    .pipe(rule);
}

/** For each time field: its default in ms, `'required'`, or `'optional'` (absent stays absent). */
export type DurationDefaults = Record<string, number | 'required' | 'optional'>;

type MsName<K> = K extends string ? `${K}_ms` : never;

/** A section's parsed value with each `name`/`name_ms` pair folded into `name_ms`. */
export type MergedDurations<O, D extends DurationDefaults> = Omit<O, keyof D | MsName<keyof D>> & {
  [K in keyof D as D[K] extends 'optional' ? never : MsName<K>]: number;
} & {
  [K in keyof D as D[K] extends 'optional' ? MsName<K> : never]?: number;
};

/**
 * The transform of a section that declares `name` (a {@link duration}) and `name_ms` (a number), both
 * optional and without defaults, for each name of `defaults`: keeps the one given under `name_ms`, fills in
 * the default, and reports a pair given twice or a required pair given not at all, at `name`.
 */
export function mergeDurations<const D extends DurationDefaults>(defaults: D) {
  return <O extends Record<string, unknown>>(value: O, ctx: z.RefinementCtx<O>): MergedDurations<O, D> => {
    const out: Record<string, unknown> = { ...value };
    for (const [name, fallback] of Object.entries(defaults)) {
      const msName = `${name}_ms`;
      const text = value[name];
      const ms = value[msName];
      delete out[name];
      delete out[msName];
      if (text !== undefined && ms !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `give ${name} or ${msName}, not both`,
          input: value,
        });
        continue;
      }
      const chosen = text ?? ms ?? (typeof fallback === 'number' ? fallback : undefined);
      if (chosen !== undefined) out[msName] = chosen;
      else if (fallback === 'required') {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `required: give ${name} (a duration such as "1s") or ${msName} (milliseconds)`,
          input: value,
        });
      }
    }
    return out as MergedDurations<O, D>;
  };
}
