// Runs inside pool threads: imported by the thread entry, never by the main thread.
import { createHash } from 'node:crypto';
import { handle } from '@cqrs-pool/core/worker';
import { InvoiceRendered, OrderPlaced, StoreInvoice } from './messages.js';

/**
 * The invoice subscriber: renders the invoice (CPU work, here in a pool thread), stores it through a nested
 * command to the main thread, then publishes InvoiceRendered from this thread.
 */
export const renderInvoice = handle(OrderPlaced, async (event, ctx) => {
  const lines = event.lines.map(
    (l) => `${l.sku.padEnd(10)} ${String(l.qty).padStart(3)} x ${l.price.toFixed(2).padStart(8)}`,
  );
  const text = [
    `INVOICE #${event.orderId} for ${event.customer}`,
    ...lines,
    `TOTAL ${event.total.toFixed(2)}`,
  ].join('\n');
  // Stands for the expensive part of rendering (a PDF, a signature): 5,000 rounds of SHA-256.
  let digest = createHash('sha256').update(text).digest();
  for (let round = 0; round < 5_000; round++) digest = createHash('sha256').update(digest).digest();
  const hex = digest.toString('hex').slice(0, 16);
  await ctx.commands.execute(StoreInvoice, { orderId: event.orderId, text, digest: hex });
  await ctx.events.publish(InvoiceRendered, {
    orderId: event.orderId,
    customer: event.customer,
    digest: hex,
  });
});
