// Runs inside pool threads: imported by the thread entry, never by the main thread.
import { scryptSync } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { handle } from '@cqrs-pool/core/worker';
import { GetProduct, PriceQuote } from './messages.js';

/** 5 % off from 5 units of a product, 10 % from 10. */
function discountRate(quantity: number): number {
  return quantity >= 10 ? 0.1 : quantity >= 5 ? 0.05 : 0;
}

export const priceQuote = handle(PriceQuote, async (input, ctx) => {
  let subtotalCents = 0;
  let discountCents = 0;
  for (const line of input.lines) {
    // Nested query to the main thread's QueryBus (through its middleware, so the cache serves repeats).
    const product = await ctx.queries.execute(GetProduct, { productId: line.productId });
    if (product === null)
      throw Object.assign(new Error(`no product ${line.productId}`), { code: 'UNKNOWN_PRODUCT' });
    const lineCents = product.priceCents * line.quantity;
    subtotalCents += lineCents;
    discountCents += Math.round(lineCents * discountRate(line.quantity));
  }
  if (ctx.isCancelled()) throw new Error('quote cancelled');
  const totalCents = subtotalCents - discountCents;
  // The CPU work, off the main thread: a stretched, tamper-evident quote id.
  const quoteId = scryptSync(JSON.stringify(input.lines), `quote:${totalCents}`, 8, { N: 1 << 14 }).toString(
    'hex',
  );
  return { subtotalCents, discountCents, totalCents, quoteId, thread: threadId };
});
