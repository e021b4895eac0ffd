/**
 * The partition of an ordering key: FNV-1a (32 bits) of the key's type and UTF-8 text, modulo
 * `partitions`. A string and a number are different keys (`'1'` and `1`), as in core's per-key order.
 * Stable across processes, platforms and versions: senders and nodes must agree on it.
 */
export function partitionOf(key: string | number, partitions: number): number {
  const text = `${typeof key === 'number' ? 'n' : 's'}:${String(key)}`;
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}
