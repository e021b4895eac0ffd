import { defineEvent } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';

// The same definition as the event bench's main thread (a definition is plain data: name and schema).
export const Placed = defineEvent('Placed', {
  payload: z.object({ orderId: z.number(), total: z.number() }),
});
/** The smallest worker subscriber: it does nothing, so a delivery's round trip is all that is measured. */
export const noop = handle(Placed, () => {});
