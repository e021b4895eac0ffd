// Events: a command publishes a fact, and every subscriber reacts to it — a read-model projection (inline),
// an invoice rendered in the pool, a stock process manager that executes a command, and a loyalty service
// that is down, whose failures land in a dead-letter list. Run it with `npm run demo:events` (or
// `node dist/examples/event-driven/main.js` after `node build.mjs --fast`).

import type { EventFailure } from '@cqrs-pool/core';
import { CommandBus, EventBus, inWorker, isCqrsError, QueryBus, retry, WorkerPool } from '@cqrs-pool/core';
import { parseCli } from '../cli.js';
import {
  CustomerOrders,
  InvoiceRendered,
  OrderPlaced,
  PlaceOrder,
  ReserveStock,
  StoreInvoice,
} from './messages.js';

parseCli({
  command: 'node dist/examples/event-driven/main.js',
  summary:
    'Events: PlaceOrder publishes OrderPlaced to a read model, an invoice rendered in the pool, a stock\n' +
    'process manager and a failing subscriber whose failures land in a dead-letter list.',
  options: {},
});

const euro = (n: number): string => `€${n.toFixed(2)}`;

// State the handlers keep (a database, in a real service).
const stock = new Map<string, number>([
  ['keyboard', 10],
  ['mouse', 10],
  ['monitor', 2],
]);
const readModel = new Map<string, { orders: number[]; spent: number }>();
const invoices = new Map<number, { text: string; digest: string }>();
const mailed: string[] = [];
const deadLetters: EventFailure[] = [];

const pool = new WorkerPool({ threads: 2 });
const commands = new CommandBus({ pool });
const queries = new QueryBus({ pool });
// onFailure: every subscriber that failed a publish, once its own retry() gave up.
const events = new EventBus({ pool, onFailure: (failure) => void deadLetters.push(failure) });

commands.registerHandler(PlaceOrder, async (input, ctx) => {
  const total = input.lines.reduce((sum, line) => sum + line.qty * line.price, 0);
  // The fact goes to every subscriber; the command waits for them and reports who got it.
  const report = await ctx.events.publish(OrderPlaced, { ...input, total });
  return {
    orderId: input.orderId,
    total,
    delivered: [...report.delivered],
    failed: report.failed.map((f) => f.subscriber),
  };
});
commands.registerHandler(ReserveStock, ({ sku, qty, orderId }) => {
  const left = stock.get(sku) ?? 0;
  if (left < qty) {
    throw Object.assign(new Error(`order #${orderId}: ${qty} ${sku} wanted, ${left} left`), {
      code: 'OUT_OF_STOCK',
    });
  }
  stock.set(sku, left - qty);
  return left - qty;
});
commands.registerHandler(StoreInvoice, ({ orderId, text, digest }) => {
  invoices.set(orderId, { text, digest });
});
queries.registerHandler(
  CustomerOrders,
  ({ customer }) => readModel.get(customer) ?? { orders: [], spent: 0 },
);

// 1. The read model, inline: cheap, on the main thread.
events.subscribe(OrderPlaced, 'read-model', (event) => {
  const entry = readModel.get(event.customer) ?? { orders: [], spent: 0 };
  entry.orders.push(event.orderId);
  entry.spent += event.total;
  readModel.set(event.customer, entry);
});
// 2. The invoice, rendered in a pool thread; it stores the invoice and publishes InvoiceRendered from there.
events.subscribe(
  OrderPlaced,
  'invoice',
  inWorker(new URL('./handlers.js', import.meta.url), 'renderInvoice'),
  {
    middleware: [retry({ maxRetries: 2, baseDelayMs: 10 })],
  },
);
// 3. The stock process manager: reacts to the fact by executing a command per line. One customer's orders
//    reserve in the order they were placed (per-key order on the customer).
events.subscribe(
  OrderPlaced,
  'stock',
  async (event, ctx) => {
    for (const line of event.lines) {
      await ctx.commands.execute(ReserveStock, { orderId: event.orderId, sku: line.sku, qty: line.qty });
    }
  },
  { orderingKey: (event) => event.customer },
);
// 4. A loyalty service that is down: retried twice, then handed to onFailure.
events.subscribe(
  OrderPlaced,
  'loyalty',
  () => {
    throw Object.assign(new Error('loyalty service unavailable (503)'), { code: 'PARTNER_DOWN' });
  },
  { middleware: [retry({ maxRetries: 2, baseDelayMs: 5 })] },
);
// And a reaction to the event the invoice subscriber publishes from its thread.
events.subscribe(InvoiceRendered, 'mailer', (event) => {
  mailed.push(`invoice #${event.orderId} mailed to ${event.customer} (digest ${event.digest})`);
});

await Promise.all([commands.ready(), queries.ready(), events.ready()]);
console.log(`events: ${events.getRegisteredEvents().join(', ')}\n`);

console.log('Placing three orders (each publishes OrderPlaced to 4 subscribers)');
const orders = [
  {
    orderId: 1,
    customer: 'alice',
    lines: [
      { sku: 'keyboard', qty: 1, price: 49.99 },
      { sku: 'mouse', qty: 2, price: 19.5 },
    ],
  },
  { orderId: 2, customer: 'bob', lines: [{ sku: 'monitor', qty: 1, price: 189 }] },
  { orderId: 3, customer: 'alice', lines: [{ sku: 'monitor', qty: 2, price: 189 }] },
];
for (const order of orders) {
  const placed = await commands.execute(PlaceOrder, order, {
    metadata: { correlationId: `order-${order.orderId}` },
  });
  console.log(
    `  #${placed.orderId} ${order.customer.padEnd(5)} ${euro(placed.total).padStart(8)}  ` +
      `delivered: ${placed.delivered.join(', ')}; failed: ${placed.failed.join(', ') || 'none'}`,
  );
}

console.log('\nThe read model (projection)');
for (const customer of ['alice', 'bob']) {
  const { orders: ids, spent } = await queries.execute(CustomerOrders, { customer });
  console.log(`  ${customer}: orders ${ids.map((id) => `#${id}`).join(', ')}, spent ${euro(spent)}`);
}

console.log('\nInvoices (rendered in the pool, stored through a nested command)');
for (const [orderId, invoice] of [...invoices].sort((a, b) => a[0] - b[0])) {
  console.log(`  #${orderId}: ${invoice.text.split('\n').length} lines, digest ${invoice.digest}`);
}
for (const line of mailed.sort()) console.log(`  ${line}`);

console.log('\nStock after the process manager');
console.log(`  ${[...stock].map(([sku, left]) => `${sku} ${left}`).join(', ')}`);

console.log(`\nDead letters (${deadLetters.length}, from onFailure)`);
for (const { event, subscriber, error, payload, metadata } of deadLetters) {
  // The handler's own error, under the HANDLER_FAILED of each hop (the stock manager's command, here).
  let root: unknown = error;
  while (isCqrsError(root, 'HANDLER_FAILED') && root.cause !== undefined) root = root.cause;
  const { code, message } = root as { code?: unknown; message?: unknown };
  console.log(
    `  ${event}:${subscriber} order #${(payload as { orderId: number }).orderId} ` +
      `(${metadata.correlationId}): ${error.code}, cause ${String(code)}: ${String(message)}`,
  );
}

console.log('\nPer subscriber (getMetrics, every attempt counted)');
console.log(`  ${'subscriber'.padEnd(26)} ${'executions'.padStart(10)} ${'failures'.padStart(9)}  p50 ms`);
for (const [name, figures] of Object.entries(events.getMetrics().handlers)) {
  console.log(
    `  ${name.padEnd(26)} ${String(figures.executions).padStart(10)} ${String(figures.failures).padStart(9)}  ${figures.latency.p50.toFixed(3)}`,
  );
}

await Promise.all([commands.close(), queries.close(), events.close()]);
await pool.close();
const late = await events
  .publish(OrderPlaced, { orderId: 4, customer: 'x', lines: [], total: 0 })
  .catch((e) => e);
console.log(`\nAfter close: ${isCqrsError(late) ? late.code : 'accepted?!'}. Done.`);
