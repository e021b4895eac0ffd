import { z } from 'zod';
import { duration, mergeDurations } from './durationFields.js';

// The configuration file, shaped like go-cqrs's configs: a section per bus choosing which middleware it gets,
// and a section per middleware with its parameters. Every object is strict, so a misspelt field fails
// loudly, naming itself, instead of being ignored. Each time field comes in two spellings, `x_ms: 30000` and
// `x: 30s` (see durationFields.ts); the parsed configuration holds `x_ms` only.

const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);
const positiveMs = z.number().positive().finite();

const poolSection = z
  .strictObject({
    /** Threads; default: the machine's available parallelism. */
    threads: positiveInt.optional(),
    min_threads: nonNegativeInt.optional(),
    max_queue: nonNegativeInt.optional(),
    idle_timeout_ms: nonNegativeInt.optional(),
    idle_timeout: duration(nonNegativeInt).optional(),
    cancel_grace_ms: nonNegativeInt.optional(),
    cancel_grace: duration(nonNegativeInt).optional(),
    /** V8 old-generation heap limit per thread, in MB. */
    max_old_generation_mb: positiveInt.optional(),
  })
  .transform(mergeDurations({ idle_timeout: 'optional', cancel_grace: 'optional' }));

const busFields = {
  enable_metrics: z.boolean().default(true),
  enable_validation: z.boolean().default(true),
  enable_logging: z.boolean().default(true),
  enable_rate_limit: z.boolean().default(true),
  enable_circuit_breaker: z.boolean().default(true),
  enable_retry: z.boolean().default(false),
  /** Per-call timeout of this bus; absent: no timeout middleware on this bus. */
  timeout_ms: positiveMs.optional(),
  timeout: duration(positiveMs).optional(),
};
const busSection = z.strictObject(busFields).transform(mergeDurations({ timeout: 'optional' }));
const querySection = z
  .strictObject({
    ...busFields,
    enable_caching: z.boolean().default(true),
    enable_retry: z.boolean().default(true),
  })
  .transform(mergeDurations({ timeout: 'optional' }));

// The event bus validates every payload on publish (no `enable_validation`) and never caches.
const eventSection = z
  .strictObject({
    enable_metrics: z.boolean().default(true),
    enable_logging: z.boolean().default(true),
    enable_rate_limit: z.boolean().default(true),
    enable_circuit_breaker: z.boolean().default(true),
    /** Each subscriber retries its own failures before they reach `onFailure`. */
    enable_retry: z.boolean().default(false),
    /** Per-subscriber timeout; absent: none. */
    timeout_ms: positiveMs.optional(),
    timeout: duration(positiveMs).optional(),
    /** How `publish` runs the subscribers by default. */
    strategy: z.enum(['parallel', 'sequential']).default('parallel'),
  })
  .transform(mergeDurations({ timeout: 'optional' }));

const middlewareSection = z.strictObject({
  timeout: z
    .strictObject({
      enabled: z.boolean().default(true),
      grace_ms: nonNegativeInt.optional(),
      grace: duration(nonNegativeInt).optional(),
    })
    .transform(mergeDurations({ grace: 'optional' }))
    .prefault({}),
  circuit_breaker: z
    .strictObject({
      enabled: z.boolean().default(true),
      failure_threshold: positiveInt.default(5),
      reset_after_ms: positiveMs.optional(),
      reset_after: duration(positiveMs).optional(),
      half_open_probes: positiveInt.default(1),
    })
    .transform(mergeDurations({ reset_after: 30_000 }))
    .prefault({ enabled: false }),
  rate_limit: z
    .strictObject({
      enabled: z.boolean().default(true),
      limit: positiveInt,
      window_ms: positiveMs.optional(),
      window: duration(positiveMs).optional(),
      burst: positiveInt.optional(),
      key: z.enum(['handler', 'bus']).default('handler'),
    })
    .transform(mergeDurations({ window: 'required' }))
    .optional(),
  caching: z
    .strictObject({
      enabled: z.boolean().default(true),
      ttl_ms: positiveMs.optional(),
      ttl: duration(positiveMs).optional(),
      max: positiveInt.default(1000),
    })
    .transform(mergeDurations({ ttl: 'required' }))
    .optional(),
  retry: z
    .strictObject({
      enabled: z.boolean().default(true),
      max_retries: nonNegativeInt.default(3),
      base_delay_ms: nonNegativeInt.optional(),
      base_delay: duration(nonNegativeInt).optional(),
      max_delay_ms: nonNegativeInt.optional(),
      max_delay: duration(nonNegativeInt).optional(),
      jitter: z.boolean().default(true),
      on_commands: z.boolean().default(false),
    })
    .transform(mergeDurations({ base_delay: 50, max_delay: 2_000 }))
    .optional(),
  validation: z
    .strictObject({ enabled: z.boolean().default(true), output: z.boolean().default(false) })
    .prefault({}),
  logging: z
    .strictObject({
      enabled: z.boolean().default(true),
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      include_input: z.boolean().default(false),
      slow_ms: positiveMs.optional(),
      slow: duration(positiveMs).optional(),
    })
    .transform(mergeDurations({ slow: 'optional' }))
    .prefault({}),
});

/** The schema of a configuration file. */
export const configSchema = z.strictObject({
  /** Free text: which environment this file is for. */
  environment: z.string().optional(),
  pool: poolSection.prefault({}),
  command_bus: busSection.prefault({}),
  query_bus: querySection.prefault({}),
  event_bus: eventSection.prefault({}),
  middleware: middlewareSection.prefault({}),
});

/** A configuration as written in a file (fields with defaults may be left out). */
export type CqrsConfigInput = z.input<typeof configSchema>;
/** A validated configuration, defaults filled in; every time field in milliseconds (`*_ms`). */
export type CqrsConfig = z.output<typeof configSchema>;
