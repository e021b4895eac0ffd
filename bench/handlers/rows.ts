import { defineQuery, defineStreamQuery } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';

/** One small row, as a report or an export produces them. */
export interface Row {
  id: number;
  name: string;
}

/** `n` rows, streamed. */
export const StreamRows = defineStreamQuery('StreamRows', {
  input: z.object({ n: z.number() }),
  item: z.custom<Row>(),
});
/** The same `n` rows, returned as one array. */
export const ArrayRows = defineQuery('ArrayRows', {
  input: z.object({ n: z.number() }),
  output: z.custom<Row[]>(),
});

export const streamRows = handle(StreamRows, async function* ({ n }) {
  for (let i = 0; i < n; i++) yield { id: i, name: 'row' };
});

export const arrayRows = handle(ArrayRows, ({ n }) => {
  const rows = new Array<Row>(n);
  for (let i = 0; i < n; i++) rows[i] = { id: i, name: 'row' };
  return rows;
});

/** A page of `n` rows with its count, as a paged list query returns them. */
export interface RowPage {
  rows: Row[];
  total: number;
}
/** The same `n` rows inside a page object. */
export const PagedRows = defineQuery('PagedRows', {
  input: z.object({ n: z.number() }),
  output: z.custom<RowPage>(),
});

export const pagedRows = handle(PagedRows, ({ n }) => {
  const rows = new Array<Row>(n);
  for (let i = 0; i < n; i++) rows[i] = { id: i, name: 'row' };
  return { rows, total: n };
});
