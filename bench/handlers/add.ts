import { defineCommand } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';

// The same definition as the benches' main thread (a definition is plain data: name and schemas).
const Add = defineCommand('Add', { input: z.object({ a: z.number(), b: z.number() }), output: z.number() });
export const add = handle(Add, (input) => input.a + input.b);
