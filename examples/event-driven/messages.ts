import { defineCommand, defineEvent, defineQuery } from '@cqrs-pool/core';
import { z } from 'zod';

const Line = z.object({ sku: z.string().min(1), qty: z.number().int().min(1), price: z.number().positive() });

/** Places an order; its handler publishes {@link OrderPlaced}. */
export const PlaceOrder = defineCommand('PlaceOrder', {
  input: z.object({
    orderId: z.number().int().min(1),
    customer: z.string().min(1),
    lines: z.array(Line).min(1),
  }),
  output: z.custom<{ orderId: number; total: number; delivered: string[]; failed: string[] }>(),
});

/** The fact: an order was placed. Every subscriber gets it. */
export const OrderPlaced = defineEvent('OrderPlaced', {
  payload: z.object({
    orderId: z.number().int(),
    customer: z.string(),
    lines: z.array(Line),
    total: z.number(),
  }),
});

/** Takes stock for one line; refused with OUT_OF_STOCK when there is not enough. */
export const ReserveStock = defineCommand('ReserveStock', {
  input: z.object({ orderId: z.number().int(), sku: z.string(), qty: z.number().int().min(1) }),
  output: z.number(),
});

/** Keeps a rendered invoice (the invoice subscriber runs in the pool and stores it through this command). */
export const StoreInvoice = defineCommand('StoreInvoice', {
  input: z.object({ orderId: z.number().int(), text: z.string(), digest: z.string() }),
});

/** Published from a pool thread once an invoice is rendered. */
export const InvoiceRendered = defineEvent('InvoiceRendered', {
  payload: z.object({ orderId: z.number().int(), customer: z.string(), digest: z.string() }),
});

/** The read model: a customer's orders, as the projection built them. */
export const CustomerOrders = defineQuery('CustomerOrders', {
  input: z.object({ customer: z.string() }),
  output: z.custom<{ orders: number[]; spent: number }>(),
});
