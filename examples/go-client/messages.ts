import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

export const User = z.object({ id: z.number(), username: z.string(), email: z.string() });

export const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int().min(1), username: z.string().min(3).max(50), email: z.email() }),
  output: User,
});
export const DeleteUser = defineCommand('DeleteUser', {
  input: z.object({ userId: z.number().int().min(1) }),
});
export const GetUser = defineQuery('GetUser', {
  input: z.object({ userId: z.number().int() }),
  output: User.nullable(),
});
/** The caller's metadata as the handler saw it. */
export const Whoami = defineQuery('Whoami', {
  input: z.object({}),
  output: z.record(z.string(), z.string()),
});
/** An account, with what only tagged JSON carries: a bigint, a date, a set. */
export const GetAccount = defineQuery('GetAccount', {
  input: z.object({ userId: z.number().int() }),
  output: z.object({ userId: z.number(), balance: z.bigint(), openedAt: z.date(), tags: z.set(z.string()) }),
});
