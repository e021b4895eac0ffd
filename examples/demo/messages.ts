import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

export const User = z.object({
  id: z.number(),
  username: z.string(),
  email: z.string(),
  fullName: z.string(),
});
export type User = z.infer<typeof User>;

export const CreateUser = defineCommand('CreateUser', {
  input: z.object({
    userId: z.number().int().min(1),
    username: z.string().min(3).max(50),
    email: z.email(),
    fullName: z.string().min(1),
  }),
  output: User,
});

export const GetUser = defineQuery('GetUser', {
  input: z.object({ userId: z.number().int() }),
  output: z.custom<User | null>(),
});

export const ListUsers = defineQuery('ListUsers', { input: z.object({}), output: z.array(User) });

/** CPU-heavy: runs in the pool; it reads the users back through a nested query to the main thread. */
export const BuildUserReport = defineQuery('BuildUserReport', {
  input: z.object({
    rounds: z
      .number()
      .int()
      .min(1)
      .max(1 << 16),
  }),
  output: z.object({
    users: z.number(),
    fingerprints: z.array(z.object({ username: z.string(), fingerprint: z.string() })),
    thread: z.number(),
    correlationId: z.string().optional(),
  }),
});

/** Fails on purpose, to show how a handler's error reaches the caller. */
export const DeleteUser = defineCommand('DeleteUser', { input: z.object({ userId: z.number().int() }) });
