/**
 * Turns the scenarios' results into `bench/results/summary.md` (machine, targets met or not, every table)
 * and `summary.svg` (the scenarios' bar charts, drawn by hand: a chart library is not worth a dependency).
 */
import { formatNs, type ResultChart, type ScenarioResult } from './report.js';
import type { TargetCheck } from './targets.js';

export interface SummaryInput {
  results: ScenarioResult[];
  skipped: { name: string; reason: string }[];
  failed: string[];
  targets: TargetCheck[];
  totalSeconds: number;
  command: string;
}

/** The machine's load when the scenario ran: other work on its cores colours every figure. */
function loadText(result: ScenarioResult): string {
  const load = result.machine.load;
  return typeof load === 'number' && Number.isFinite(load) ? `, load average ${load.toFixed(1)}` : '';
}

const cell = (s: string): string => s.replaceAll('|', '\\|');

function table(columns: string[], rows: string[][]): string {
  return [
    `| ${columns.map(cell).join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/**
 * The summary. `only` keeps the tables of those scenarios (the README shows the headline ones and points at
 * the full summary for the rest).
 */
export function markdown(input: SummaryInput, only?: readonly string[]): string {
  const machine = input.results[0]?.machine;
  const dates = input.results.map((r) => r.date).sort();
  const lines: string[] = [
    '# Benchmark summary',
    '',
    `Machine: ${machine?.cpu ?? 'unknown'}, ${machine?.cpus ?? '?'} cores, Node ${machine?.node ?? '?'}. ` +
      `Results dated ${dates[0]?.slice(0, 16).replace('T', ' ') ?? '?'} – ${dates[dates.length - 1]?.slice(11, 16) ?? '?'} UTC; ` +
      `\`${input.command}\` took ${Math.round(input.totalSeconds)} s` +
      (input.command === 'npm run bench' ? '.' : '; `npm run bench` reproduces it all.'),
    '',
    '## Targets',
    '',
    'Each checked against figures measured in the same run (medians; ratios to baselines run beside them).',
    '',
    table(
      ['target', 'measured', 'met'],
      input.targets.map((t) => [
        t.target,
        t.measured,
        t.met === undefined ? 'not measured' : t.met ? 'met' : 'not met',
      ]),
    ),
    '',
  ];
  if (input.skipped.length > 0 || input.failed.length > 0) {
    lines.push(
      ...input.skipped.map((s) => `- ${s.name}: skipped (${s.reason})`),
      ...input.failed.map((f) => `- ${f}: failed (see bench/results/${f}.log)`),
      '',
    );
  }
  for (const result of input.results) {
    if (only !== undefined && !only.includes(result.name)) continue;
    for (const t of result.tables) {
      lines.push(
        `## ${t.title}`,
        '',
        `_${result.name}, ${result.date.slice(0, 16).replace('T', ' ')} UTC${loadText(result)}_`,
        '',
      );
      lines.push(table(t.columns, t.rows), '');
      if (t.note !== undefined) lines.push(t.note, '');
    }
  }
  const inline = input.results.find((r) => r.name === 'inlineDispatch')?.values;
  const cached = input.results.find((r) => r.name === 'cachingLogging')?.values;
  lines.push(
    '## Published numbers of another runtime',
    '',
    "go-cqrs's README figures, quoted beside ours for orientation only: another language and runtime on " +
      'another machine, not a same-machine comparison.',
    '',
    table(
      ['what', 'go-cqrs (published)', 'cqrs-pool (this run)'],
      [
        ['command, inline', '287 ns', formatNs(inline?.executeNs ?? Number.NaN)],
        ['query, inline', '412 ns', formatNs(inline?.queryExecuteNs ?? Number.NaN)],
        ['cached query hit', '89.6 ns', formatNs(cached?.cachedHitNs ?? Number.NaN)],
      ],
    ),
    '',
  );
  return `${lines.join('\n')}\n`;
}

const xml = (s: string): string => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

function number(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === '×') return `×${value.toFixed(2)}`;
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}

/** Horizontal bar charts stacked vertically; ours in one colour, references in another. */
export function svg(charts: ResultChart[]): string {
  const width = 820;
  const labelWidth = 340;
  const barMax = width - labelWidth - 120;
  const barHeight = 20;
  const parts: string[] = [];
  let y = 10;
  for (const chart of charts) {
    y += 22;
    parts.push(`<text x="10" y="${y}" font-weight="bold">${xml(chart.title)}</text>`);
    y += 10;
    const max = Math.max(...chart.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), 1e-9);
    for (const bar of chart.bars) {
      const w = Number.isFinite(bar.value) ? Math.max(1, (bar.value / max) * barMax) : 0;
      const colour = bar.ours ? '#2b6cb0' : bar.reference ? '#718096' : '#a0aec0';
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${xml(bar.label)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 4}" fill="${colour}"/>`,
        `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 14}">${xml(number(bar.value, chart.unit))}</text>`,
      );
      y += barHeight;
    }
    y += 10;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
