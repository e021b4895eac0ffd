// A small e-commerce flow: users, products and orders. State lives on the main thread (Maps) with inline
// handlers; the price quote (CPU-ish) runs in the pool. Shows a cache hit, invalidation after an order, a
// validation error, an out-of-stock order and the metrics of both buses.
// Run it with `node dist/examples/simplified-demo/main.js` after `node build.mjs --fast`.
import {
  CommandBus,
  caching,
  inWorker,
  isCqrsError,
  logging,
  QueryBus,
  validation,
  WorkerPool,
} from '@cqrs-pool/core';
import pino from 'pino';
import { parseCli } from '../cli.js';
import {
  CreateProduct,
  CreateUser,
  GetProduct,
  ListOrders,
  type Order,
  PlaceOrder,
  PriceQuote,
  type Product,
  type User,
} from './messages.js';

parseCli({
  command: 'node dist/examples/simplified-demo/main.js',
  summary: 'A small e-commerce flow: users, products, orders, a cached query and its invalidation.',
  options: {},
});

// ── State (main thread) ────────────────────────────────────────────────────────────────────────────────────
const users = new Map<number, User>();
const products = new Map<number, Product>();
const orders = new Map<number, Order[]>();
let nextOrderId = 1;
let getProductRuns = 0; // how often the GetProduct handler really ran (cache hits do not reach it)

// ── Buses ──────────────────────────────────────────────────────────────────────────────────────────────────
// pino writes JSON lines to stdout, at 'warn' only: successes (info) stay quiet so the demo output is readable,
// while the refused call (VALIDATION, warn) and the failed order (HANDLER_FAILED, error) show up as one line each.
// A synchronous destination keeps those lines in order with console.log; the err serializer drops stacks.
const logger = pino(
  {
    level: 'warn',
    base: { service: 'simplified-demo' },
    serializers: {
      err: (e: { code?: unknown; message?: unknown }) => ({ code: e.code, message: e.message }),
    },
  },
  pino.destination({ dest: 1, sync: true }),
);
const cache = caching({ ttlMs: 60_000 });
const pool = new WorkerPool({ threads: 2, maxQueue: 100 });
const commands = new CommandBus({ pool, middleware: [logging(logger), validation()] });
const queries = new QueryBus({ pool, middleware: [logging(logger), validation(), cache] });

function domainError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

commands.registerHandler(CreateUser, (input) => {
  if (users.has(input.userId)) throw domainError('USER_EXISTS', `user ${input.userId} exists`);
  const user = { id: input.userId, name: input.name, email: input.email };
  users.set(user.id, user);
  return user;
});
commands.registerHandler(CreateProduct, (input) => {
  if (products.has(input.productId)) throw domainError('PRODUCT_EXISTS', `product ${input.productId} exists`);
  const product = { id: input.productId, name: input.name, priceCents: input.priceCents, stock: input.stock };
  products.set(product.id, product);
  return product;
});
commands.registerHandler(PlaceOrder, (input) => {
  if (!users.has(input.userId)) throw domainError('UNKNOWN_USER', `no user ${input.userId}`);
  // Check every line before touching stock: an order is all or nothing.
  for (const line of input.lines) {
    const product = products.get(line.productId);
    if (product === undefined) throw domainError('UNKNOWN_PRODUCT', `no product ${line.productId}`);
    if (product.stock < line.quantity)
      throw domainError(
        'OUT_OF_STOCK',
        `${product.name}: ${line.quantity} requested, ${product.stock} in stock`,
      );
  }
  let totalCents = 0;
  for (const line of input.lines) {
    const product = products.get(line.productId) as Product;
    // Replace, never mutate: the cache may still hand the old object to a reader.
    products.set(product.id, { ...product, stock: product.stock - line.quantity });
    totalCents += product.priceCents * line.quantity;
  }
  const order = { id: nextOrderId++, userId: input.userId, lines: input.lines, totalCents };
  orders.set(input.userId, [...(orders.get(input.userId) ?? []), order]);
  return order;
});
queries.registerHandler(GetProduct, (input) => {
  getProductRuns++;
  return products.get(input.productId) ?? null;
});
queries.registerHandler(ListOrders, (input) => orders.get(input.userId) ?? []);
queries.registerHandler(PriceQuote, inWorker(new URL('./handlers.js', import.meta.url), 'priceQuote'));
await Promise.all([commands.ready(), queries.ready()]);

/** Places an order, then drops the cache entries it made stale. */
async function placeOrder(input: { userId: number; lines: Array<{ productId: number; quantity: number }> }) {
  const order = await commands.execute(PlaceOrder, input);
  for (const line of input.lines) cache.invalidate(GetProduct, { productId: line.productId });
  cache.invalidate(ListOrders, { userId: input.userId });
  return order;
}

function describeError(err: unknown): string {
  if (!isCqrsError(err)) throw err;
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const causeText =
    typeof cause?.code === 'string' ? ` (cause code ${cause.code}: ${String(cause.message)})` : '';
  return `${err.code}${causeText} — ${err.message}`;
}

const euros = (cents: number): string => `€${(cents / 100).toFixed(2)}`;

// ── The flow ───────────────────────────────────────────────────────────────────────────────────────────────
console.log('Creating users and products');
for (const [userId, name] of [
  [1, 'Alice'],
  [2, 'Bob'],
] as const) {
  const user = await commands.execute(CreateUser, {
    userId,
    name,
    email: `${name.toLowerCase()}@example.com`,
  });
  console.log(`  created user #${user.id} ${user.name} <${user.email}>`);
}
for (const [productId, name, priceCents, stock] of [
  [1, 'Keyboard', 4_999, 10],
  [2, 'Mouse', 1_999, 25],
  [3, 'Monitor', 18_900, 2],
] as const) {
  const p = await commands.execute(CreateProduct, { productId, name, priceCents, stock });
  console.log(`  created product #${p.id} ${p.name} ${euros(p.priceCents)}, stock ${p.stock}`);
}

console.log('\nCaching: GetProduct twice');
const first = await queries.execute(GetProduct, { productId: 1 });
const second = await queries.execute(GetProduct, { productId: 1 });
console.log(`  ${first?.name} stock ${first?.stock}, then ${second?.name} stock ${second?.stock}`);
console.log(`  handler ran ${getProductRuns} time(s): second GetProduct served from cache`);

console.log('\nA price quote in the pool (nested GetProduct queries, volume discount)');
const quote = await queries.execute(PriceQuote, {
  lines: [
    { productId: 1, quantity: 5 },
    { productId: 2, quantity: 10 },
  ],
});
console.log(
  `  subtotal ${euros(quote.subtotalCents)}, discount ${euros(quote.discountCents)}, total ${euros(quote.totalCents)}` +
    ` (quote ${quote.quoteId}, pool thread ${quote.thread})`,
);

console.log('\nPlacing an order, then reading the product again (cache invalidated)');
const order = await placeOrder({
  userId: 1,
  lines: [
    { productId: 1, quantity: 3 },
    { productId: 3, quantity: 1 },
  ],
});
console.log(`  order placed: #${order.id} for user ${order.userId}, total ${euros(order.totalCents)}`);
const before = getProductRuns;
const keyboard = await queries.execute(GetProduct, { productId: 1 });
console.log(
  `  stock after order: ${keyboard?.name} ${keyboard?.stock} (handler ran again: ${getProductRuns > before})`,
);
const aliceOrders = await queries.execute(ListOrders, { userId: 1 });
console.log(`  user 1 has ${aliceOrders.length} order(s): ${aliceOrders.map((o) => `#${o.id}`).join(', ')}`);

console.log('\nErrors a caller meets (the JSON lines are pino, at warn and above)');
try {
  await commands.execute(CreateUser, { userId: 3, name: 'Carol', email: 'not-an-email' });
  console.log('  bad email: no error?');
} catch (err) {
  console.log(`  bad email: ${describeError(err)}`);
}
try {
  await placeOrder({ userId: 2, lines: [{ productId: 3, quantity: 2 }] });
  console.log('  too many monitors: no error?');
} catch (err) {
  console.log(`  too many monitors: ${describeError(err)}`);
}
const monitor = await queries.execute(GetProduct, { productId: 3 });
console.log(`  Monitor stock unchanged by the refused order: ${monitor?.stock}`);

// ── Metrics ────────────────────────────────────────────────────────────────────────────────────────────────
console.log('\nMetrics (latency in ms)');
const header = `  ${'handler'.padEnd(14)}${'kind'.padEnd(9)}${'executions'.padStart(10)}${'failures'.padStart(10)}${'p50'.padStart(9)}${'p99'.padStart(9)}`;
console.log(header);
for (const [kind, bus] of [
  ['command', commands],
  ['query', queries],
] as const) {
  for (const [name, m] of Object.entries(bus.getMetrics().handlers)) {
    console.log(
      `  ${name.padEnd(14)}${kind.padEnd(9)}${String(m.executions).padStart(10)}${String(m.failures).padStart(10)}` +
        `${m.latency.p50.toFixed(3).padStart(9)}${m.latency.p99.toFixed(3).padStart(9)}`,
    );
  }
}

// Graceful: the buses drain what is in flight, then the pool stops its threads.
await Promise.all([commands.close(), queries.close()]);
await pool.close();
logger.flush();
console.log('\nDone.');
