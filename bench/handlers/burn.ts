import { defineCommand } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';
import { burn as work } from './burnWork.js';

export const Burn = defineCommand('Burn', {
  input: z.object({ iterations: z.number() }),
  output: z.number(),
});
/** A CPU-bound handler: `iterations` calibrated by the bench to about 1 ms (or 5 ms) of work. */
export const burn = handle(Burn, (input) => work(input.iterations));
