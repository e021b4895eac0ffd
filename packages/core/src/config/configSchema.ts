import { z } from 'zod';

// The configuration file, shaped like go-cqrs's configs/*.json: a section per bus choosing which middleware it
// gets, and a section per middleware with its parameters. Every object is strict, so a misspelt field fails
// loudly, naming itself, instead of being ignored.

const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);
const positiveMs = z.number().positive().finite();

const poolSection = z.strictObject({
  /** Threads; default: the machine's available parallelism. */
  threads: positiveInt.optional(),
  min_threads: nonNegativeInt.optional(),
  max_queue: nonNegativeInt.optional(),
  idle_timeout_ms: nonNegativeInt.optional(),
  cancel_grace_ms: nonNegativeInt.optional(),
  /** V8 old-generation heap limit per thread, in MB. */
  max_old_generation_mb: positiveInt.optional(),
});

const busSection = z.strictObject({
  enable_metrics: z.boolean().default(true),
  enable_validation: z.boolean().default(true),
  enable_logging: z.boolean().default(true),
  enable_rate_limit: z.boolean().default(true),
  enable_circuit_breaker: z.boolean().default(true),
  enable_retry: z.boolean().default(false),
  /** Per-call timeout of this bus, in ms; absent: no timeout middleware on this bus. */
  timeout_ms: positiveMs.optional(),
});

const querySection = busSection.extend({
  enable_caching: z.boolean().default(true),
  enable_retry: z.boolean().default(true),
});

const middlewareSection = z.strictObject({
  timeout: z
    .strictObject({ enabled: z.boolean().default(true), grace_ms: nonNegativeInt.optional() })
    .default({ enabled: true }),
  circuit_breaker: z
    .strictObject({
      enabled: z.boolean().default(true),
      failure_threshold: positiveInt.default(5),
      reset_after_ms: positiveMs.default(30_000),
      half_open_probes: positiveInt.default(1),
    })
    .default({ enabled: false, failure_threshold: 5, reset_after_ms: 30_000, half_open_probes: 1 }),
  rate_limit: z
    .strictObject({
      enabled: z.boolean().default(true),
      limit: positiveInt,
      window_ms: positiveMs,
      burst: positiveInt.optional(),
      key: z.enum(['handler', 'bus']).default('handler'),
    })
    .optional(),
  caching: z
    .strictObject({ enabled: z.boolean().default(true), ttl_ms: positiveMs, max: positiveInt.default(1000) })
    .optional(),
  retry: z
    .strictObject({
      enabled: z.boolean().default(true),
      max_retries: nonNegativeInt.default(3),
      base_delay_ms: nonNegativeInt.default(50),
      max_delay_ms: nonNegativeInt.default(2000),
      jitter: z.boolean().default(true),
      on_commands: z.boolean().default(false),
    })
    .optional(),
  validation: z
    .strictObject({ enabled: z.boolean().default(true), output: z.boolean().default(false) })
    .default({ enabled: true, output: false }),
  logging: z
    .strictObject({
      enabled: z.boolean().default(true),
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      include_input: z.boolean().default(false),
      slow_ms: positiveMs.optional(),
    })
    .default({ enabled: true, level: 'info', include_input: false }),
});

/** The schema of a configuration file. */
export const configSchema = z.strictObject({
  /** Free text: which environment this file is for. */
  environment: z.string().optional(),
  pool: poolSection.default({}),
  command_bus: busSection.default(busSection.parse({})),
  query_bus: querySection.default(querySection.parse({})),
  middleware: middlewareSection.default(middlewareSection.parse({})),
});

/** A configuration as written in a file (fields with defaults may be left out). */
export type CqrsConfigInput = z.input<typeof configSchema>;
/** A validated configuration, defaults filled in. */
export type CqrsConfig = z.output<typeof configSchema>;
