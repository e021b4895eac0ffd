import type { Row } from './rows.js';

/** The rows of `arrayRows` (rows.ts), for raw piscina. */
export default function rowsTask({ n }: { n: number }): Row[] {
  const rows = new Array<Row>(n);
  for (let i = 0; i < n; i++) rows[i] = { id: i, name: 'row' };
  return rows;
}
