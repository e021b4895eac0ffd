/**
 * `npm run bench`: runs every scenario in its own process (a scenario's JIT state, heap and threads never
 * colour the next one), shows a progress line, and writes `bench/results/summary.md` and `summary.svg` from
 * the scenarios' `bench/results/<name>.json`, with each target and whether it was met.
 *
 * Scenarios are every `bench/*.bench.ts` plus the scripts named in `scripts` below. A scenario that cannot
 * run here (say, no server to talk to) writes a result with `skipped: '<reason>'` or prints a line
 * `skipped: <reason>`; the run goes on and reports it. Its output goes to `bench/results/<name>.log`.
 *
 *   npm run bench                  all
 *   npm run bench -- pooled cpu    the scenarios whose names contain any of the words
 *   npm run bench -- --readme      also rewrite the README's generated performance table
 */
import { spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScenarioResult } from './report.js';
import { markdown, svg } from './summary.js';
import { checkTargets } from './targets.js';

const distBench = fileURLToPath(new URL('./', import.meta.url));
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));

/** Scripts that are scenarios though not `*.bench.ts`, with the flags Node needs for them. */
const scripts: Record<string, string[]> = {
  memoryInFlight: ['--expose-gc'],
  memoryGrowth: ['--expose-gc'],
};
// The figures that matter most run first, so a run cut short still has them.
const order = [
  'httpService',
  'pooledDispatch',
  'cpuScaling',
  'eventLoopDelay',
  'inlineDispatch',
  'middlewareStack',
];
// A scenario stuck longer than this is stopped and reported as failed (the longest, serviceLoad, takes ~5 min
// on 2 cores; the whole run ~15 min).
const scenarioTimeoutMs = 420_000;
// The tables the README shows (with the targets); every table is in bench/results/summary.md.
const readmeScenarios = [
  'httpService',
  'pooledDispatch',
  'cpuScaling',
  'eventLoopDelay',
  'inlineDispatch',
  'inlineLoop',
  'middlewareStack',
  'cachingLogging',
  'memoryInFlight',
  'memoryGrowth',
];

interface Scenario {
  name: string;
  file: string;
  nodeFlags: string[];
}

function discover(): Scenario[] {
  const found: Scenario[] = readdirSync(distBench)
    .filter((f) => f.endsWith('.bench.js'))
    .map((f) => ({ name: f.slice(0, -'.bench.js'.length), file: f, nodeFlags: [] }));
  for (const [name, nodeFlags] of Object.entries(scripts)) {
    if (existsSync(`${distBench}${name}.js`)) found.push({ name, file: `${name}.js`, nodeFlags });
  }
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  return found.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

const args = process.argv.slice(2);
const words = args.filter((a) => !a.startsWith('-')).map((w) => w.toLowerCase());
const all = discover();
const scenarios =
  words.length === 0 ? all : all.filter((s) => words.some((w) => s.name.toLowerCase().includes(w)));
if (scenarios.length === 0) {
  console.error(`no scenario matches ${words.join(', ')}; there are: ${all.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const tty = process.stdout.isTTY === true;
const started = performance.now();

function progress(index: number, name: string, since: number, final = ''): void {
  const line = `[${index}/${scenarios.length}] ${name} … ${Math.round((performance.now() - since) / 1000)} s${final}`;
  if (tty) process.stdout.write(`\r\x1b[2K${line}${final === '' ? '' : '\n'}`);
  else if (final !== '') console.log(line);
}

interface Outcome {
  code: number | null;
  skipped?: string;
}

async function runScenario(scenario: Scenario, index: number): Promise<Outcome> {
  const json = `${resultsDir}${scenario.name}.json`;
  rmSync(json, { force: true }); // a stale result must not pass for this run's
  const log = createWriteStream(`${resultsDir}${scenario.name}.log`);
  const since = performance.now();
  if (!tty) console.log(`[${index}/${scenarios.length}] ${scenario.name} …`);
  const child = spawn(process.execPath, [...scenario.nodeFlags, `${distBench}${scenario.file}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let skippedLine: string | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    log.write(chunk);
    skippedLine ??= /^skipped:\s*(.*)$/m.exec(chunk.toString())?.[1];
  });
  child.stderr.on('data', (chunk: Buffer) => log.write(chunk));
  const ticker = setInterval(() => progress(index, scenario.name, since), 1000);
  const killer = setTimeout(() => child.kill(), scenarioTimeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(ticker);
  clearTimeout(killer);
  await new Promise<void>((resolve) => log.end(resolve));
  const result = existsSync(json) ? (JSON.parse(readFileSync(json, 'utf8')) as ScenarioResult) : undefined;
  const skipped = result?.skipped ?? skippedLine;
  const verdict =
    skipped !== undefined
      ? ` (skipped: ${skipped})`
      : code !== 0
        ? ` (FAILED, exit ${code}; see bench/results/${scenario.name}.log)`
        : result === undefined
          ? ' (FAILED: wrote no result)'
          : ' done';
  progress(index, scenario.name, since, verdict);
  return {
    code: result === undefined && skipped === undefined ? (code ?? 1) || 1 : code,
    ...(skipped === undefined ? {} : { skipped }),
  };
}

const skipped: { name: string; reason: string }[] = [];
const failed: string[] = [];
mkdirSync(resultsDir, { recursive: true });
for (const [i, scenario] of scenarios.entries()) {
  const outcome = await runScenario(scenario, i + 1);
  if (outcome.skipped !== undefined) skipped.push({ name: scenario.name, reason: outcome.skipped });
  else if (outcome.code !== 0) failed.push(scenario.name);
}
const totalSeconds = (performance.now() - started) / 1000;

// The summary covers every result present: this run's, and for a subset run, earlier runs' of the others
// (each table is dated).
const results = discover()
  .map((s) => `${resultsDir}${s.name}.json`)
  .filter((f) => existsSync(f))
  .map((f) => JSON.parse(readFileSync(f, 'utf8')) as ScenarioResult)
  .filter((r) => r.skipped === undefined);
const byName = new Map(results.map((r) => [r.name, r]));
const targets = checkTargets(byName);
const command = words.length === 0 ? 'npm run bench' : `npm run bench -- ${words.join(' ')}`;
const summary = markdown({ results, skipped, failed, targets, totalSeconds, command });
writeFileSync(`${resultsDir}summary.md`, summary);
writeFileSync(`${resultsDir}summary.svg`, svg(results.flatMap((r) => r.charts ?? [])));

console.log(`\n${summary}`);
console.log(
  `ran ${scenarios.length} scenarios in ${totalSeconds.toFixed(0)} s; wrote bench/results/summary.md and summary.svg`,
);

if (args.includes('--readme')) {
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const readme = readFileSync(readmePath, 'utf8');
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) {
    console.error(`README.md has no ${start} … ${end} block; not updated`);
  } else {
    // The headline scenarios, under the README section's own heading; the rest is in summary.md.
    const body = markdown({ results, skipped, failed, targets, totalSeconds, command }, readmeScenarios)
      .replace(/^# Benchmark summary\n\n/, '')
      .replaceAll(/^## /gm, '#### ');
    writeFileSync(readmePath, `${readme.slice(0, from + start.length)}\n${body}${readme.slice(to)}`);
    console.log('updated the generated block of README.md');
  }
}
process.exitCode = failed.length > 0 ? 1 : 0;
