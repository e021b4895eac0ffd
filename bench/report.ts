/**
 * What every scenario writes: `bench/results/<name>.json` holding its tables (for the summary) and its named
 * values (for the targets `run.ts` checks). `report()` runs the mitata benchmarks registered so far, prints
 * mitata's table and the medians side by side (ns per iteration and the ratio to the group's baseline), and
 * writes them; scenarios that are not mitata benchmarks call `writeResult()` themselves.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { run } from 'mitata';

export interface MedianRow {
  group: string;
  name: string;
  medianNs: number;
  /** Median over the group's baseline median; 1 for the baseline itself. */
  ratio: number;
}

/** A table for the summary: a title, column headings and rows of already formatted cells. */
export interface ResultTable {
  title: string;
  columns: string[];
  rows: string[][];
  /** Said under the table: what was measured and how. */
  note?: string;
}

/** One bar chart: labelled values in one unit; `reference` marks bars drawn as the baseline. */
export interface ResultChart {
  title: string;
  unit: string;
  bars: { label: string; value: number; ours?: boolean; reference?: boolean }[];
}

export interface ScenarioResult {
  name: string;
  /** `load`: the 1-minute load average when the scenario finished (other work on the machine). */
  machine: { node: string; cpus: number; cpu: string; load: number };
  date: string;
  /** mitata's medians, when the scenario is a mitata benchmark. */
  rows?: MedianRow[];
  tables: ResultTable[];
  /** Named figures the targets are checked against (units in the name: `Ns`, `Ms`, `Bytes`, `PerSec`). */
  values: Record<string, number>;
  /** Bar charts for the summary's SVG. */
  charts?: ResultChart[];
  /** Set when the scenario could not run here (say, no server); the runner reports it and goes on. */
  skipped?: string;
}

export function machine(): ScenarioResult['machine'] {
  return {
    node: process.version,
    cpus: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    load: loadavg()[0] ?? Number.NaN,
  };
}

export function writeResult(result: Omit<ScenarioResult, 'machine' | 'date'>): void {
  const full: ScenarioResult = { ...result, machine: machine(), date: new Date().toISOString() };
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`../../bench/results/${result.name}.json`, import.meta.url),
    `${JSON.stringify(full, null, 2)}\n`,
  );
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/**
 * `list` rotated left by `round` places: contenders interleaved in rounds take turns at each position, so
 * none always runs first (after the previous scenario's teardown) or last.
 */
export function rotated<T>(list: readonly T[], round: number): T[] {
  const by = ((round % list.length) + list.length) % list.length;
  return [...list.slice(by), ...list.slice(0, by)];
}

/** Median of a list (the lists here are short: rounds, or one latency sample per call). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * Runs mitata and writes the medians as one table per group. `values` may be computed from the rows and is
 * written with them.
 */
export async function report(
  name: string,
  values: (rows: MedianRow[]) => Record<string, number> = () => ({}),
  groupTitles: string[] = [],
  /** Tables and charts of a part of the scenario mitata could not measure (many calls in flight). */
  extra: { tables?: ResultTable[]; charts?: ResultChart[] } = {},
): Promise<MedianRow[]> {
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
  const groups = [...new Set(rows.map((r) => r.group))];
  const tables: ResultTable[] = groups.map((g, i) => ({
    title: groupTitles[i] ?? name,
    columns: ['what', 'median', 'ratio'],
    rows: rows
      .filter((r) => r.group === g)
      .map((r) => [r.name, formatNs(r.medianNs), `×${r.ratio.toFixed(2)}`]),
  }));
  writeResult({
    name,
    rows,
    tables: [...tables, ...(extra.tables ?? [])],
    values: values(rows),
    ...(extra.charts === undefined ? {} : { charts: extra.charts }),
  });
  return rows;
}

/** The median of the row named `name`, NaN when absent. */
export function medianOf(rows: readonly MedianRow[], name: string): number {
  return rows.find((r) => r.name === name)?.medianNs ?? Number.NaN;
}
