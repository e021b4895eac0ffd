import { defineCommand, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

export const User = z.object({ id: z.number(), name: z.string(), email: z.string() });
export type User = z.infer<typeof User>;

export const Product = z.object({
  id: z.number(),
  name: z.string(),
  priceCents: z.number(),
  stock: z.number(),
});
export type Product = z.infer<typeof Product>;

export const OrderLine = z.object({ productId: z.number().int().min(1), quantity: z.number().int().min(1) });
export const Order = z.object({
  id: z.number(),
  userId: z.number(),
  lines: z.array(OrderLine),
  totalCents: z.number(),
});
export type Order = z.infer<typeof Order>;

export const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int().min(1), name: z.string().min(1), email: z.email() }),
  output: User,
});

export const CreateProduct = defineCommand('CreateProduct', {
  input: z.object({
    productId: z.number().int().min(1),
    name: z.string().min(1),
    priceCents: z.number().int().min(0),
    stock: z.number().int().min(0),
  }),
  output: Product,
});

/** Checks and decrements stock; throws a domain error with `code: 'OUT_OF_STOCK'` when a line cannot be met. */
export const PlaceOrder = defineCommand('PlaceOrder', {
  input: z.object({ userId: z.number().int().min(1), lines: z.array(OrderLine).min(1) }),
  output: Order,
});

export const GetProduct = defineQuery('GetProduct', {
  input: z.object({ productId: z.number().int().min(1) }),
  output: z.custom<Product | null>(),
});

export const ListOrders = defineQuery('ListOrders', {
  input: z.object({ userId: z.number().int().min(1) }),
  output: z.array(Order),
});

/** CPU-ish: runs in the pool; reads prices back through nested GetProduct queries, applies volume discounts. */
export const PriceQuote = defineQuery('PriceQuote', {
  input: z.object({ lines: z.array(OrderLine).min(1) }),
  output: z.object({
    subtotalCents: z.number(),
    discountCents: z.number(),
    totalCents: z.number(),
    quoteId: z.string(),
    thread: z.number(),
  }),
});
