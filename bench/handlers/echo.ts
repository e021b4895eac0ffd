import { defineCommand } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';

// The same definitions as the benches' main thread (a definition is plain data: name and schemas).
export const Echo = defineCommand('Echo', { input: z.object({ id: z.number(), name: z.string() }) });
/** The smallest pooled task: it returns its input, so a round trip is all that is measured. */
export const echo = handle(Echo, (input) => input);
/** The same handler under another name, for a registration with `orderingKey` beside the plain one. */
export const EchoKeyed = defineCommand('EchoKeyed', { input: Echo.input });
export const echoKeyed = handle(EchoKeyed, (input) => input);
