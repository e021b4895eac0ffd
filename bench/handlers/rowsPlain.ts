import type { Row, RowPage } from './rows.js';

/** The rows of `arrayRows` (rows.ts), for raw piscina; in a page, as `pagedRows` returns them, when `paged`. */
export default function rowsTask({ n, paged }: { n: number; paged?: boolean }): Row[] | RowPage {
  const rows = new Array<Row>(n);
  for (let i = 0; i < n; i++) rows[i] = { id: i, name: 'row' };
  return paged === true ? { rows, total: n } : rows;
}
