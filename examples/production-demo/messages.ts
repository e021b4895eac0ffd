import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

/** CPU-heavy command: stretches a password with scrypt in a pool thread. */
export const HashPassword = defineCommand('HashPassword', {
  input: z.object({
    userId: z.number().int().min(1),
    password: z.string().min(8).max(128),
    /** scrypt cost parameter; a power of two. */
    cost: z
      .number()
      .int()
      .min(1 << 10)
      .max(1 << 15)
      .default(1 << 11),
  }),
  output: z.object({ userId: z.number(), hash: z.string() }),
});

/** CPU-heavy query: generates `size` numbers from `seed`, sorts them and reports percentiles. Cached. */
export const BuildReport = defineQuery('BuildReport', {
  input: z.object({
    seed: z.number().int().min(0),
    size: z.number().int().min(1).max(1_000_000),
  }),
  output: z.object({
    size: z.number(),
    mean: z.number(),
    stddev: z.number(),
    min: z.number(),
    p50: z.number(),
    p90: z.number(),
    p99: z.number(),
    max: z.number(),
  }),
});

/** A call to a flaky dependency: fails while the caller says an outage is on. */
export const Downstream = defineQuery('Downstream', {
  input: z.object({ requestId: z.number().int().min(0), outage: z.boolean() }),
  output: z.object({ requestId: z.number(), checksum: z.number() }),
});
