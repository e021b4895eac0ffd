const unitMs = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;

// One term: a decimal number and its unit. `ms` is tried before `m` so that `500ms` is not `500m` + `s`.
const term = /(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)/y;

/**
 * Reads a duration written as in Go's `time.ParseDuration`, restricted to the units a configuration needs:
 * `500ms`, `30s`, `10m`, `1h`, `1.5s`, or terms added up like `1m30s` and `1h2m3.5s`. `"0"` alone is zero.
 * No spaces, no sign, units in lower case.
 * @returns milliseconds, or `undefined` when `text` is not such a duration.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  term.lastIndex = 0;
  let total = 0;
  while (term.lastIndex < text.length) {
    const at = term.lastIndex;
    const match = term.exec(text);
    if (match === null || match.index !== at) return undefined;
    total += Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
  }
  // Decimal fractions are not exact in binary: 0.7 * 1000 is 700.0000000000001. Nobody means a nanosecond
  // fraction of a millisecond here.
  const ms = Math.round(total * 1e6) / 1e6;
  return Number.isFinite(ms) ? ms : undefined;
}
