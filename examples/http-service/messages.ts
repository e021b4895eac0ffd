import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

/** CPU-heavy command: scrypt over a password, ~5 ms of CPU. */
export const HashPassword = defineCommand('HashPassword', {
  input: z.strictObject({
    userId: z.number().int().min(1),
    password: z.string().min(8).max(128),
  }),
  output: z.object({ userId: z.number(), hash: z.string() }),
});

export interface User {
  id: number;
  username: string;
  email: string;
}

/** A read from the user store; cached by the query bus. */
export const GetUser = defineQuery('GetUser', {
  input: z.object({ userId: z.number().int().min(1) }),
  output: z.custom<User | null>(),
});
