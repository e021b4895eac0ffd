/**
 * Runs the mitata benchmarks registered so far, prints mitata's table and then the medians side by side
 * (ns per iteration and the ratio to the group's baseline), and writes them to `bench/results/<name>.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { run } from 'mitata';

export interface MedianRow {
  group: string;
  name: string;
  medianNs: number;
  /** Median over the group's baseline median; 1 for the baseline itself. */
  ratio: number;
}

export async function report(name: string): Promise<MedianRow[]> {
  const result = await run({ format: process.argv.includes('--json') ? 'json' : 'mitata' });
  // mitata's types omit the group index each trial carries.
  const benchmarks = result.benchmarks as ((typeof result.benchmarks)[number] & { group: number })[];
  const rows: MedianRow[] = [];
  const baselines = new Map<number, number>();
  const medians = benchmarks.map((b) => b.runs[0]?.stats?.p50 ?? Number.NaN);
  benchmarks.forEach((b, i) => {
    if (b.baseline) baselines.set(b.group, medians[i] ?? Number.NaN);
  });
  benchmarks.forEach((b, i) => {
    const median = medians[i] ?? Number.NaN;
    const base = baselines.get(b.group) ?? median;
    rows.push({ group: String(b.group), name: b.alias, medianNs: median, ratio: median / base });
  });
  console.log(`\nmedians (${name}):`);
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(44)} ${row.medianNs.toFixed(1).padStart(10)} ns   ×${row.ratio.toFixed(2)}`,
    );
  }
  const machine = { node: process.version, cpus: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown' };
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`../../bench/results/${name}.json`, import.meta.url),
    `${JSON.stringify({ name, machine, date: new Date().toISOString(), rows }, null, 2)}\n`,
  );
  return rows;
}
