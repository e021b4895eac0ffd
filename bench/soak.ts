/**
 * `npm run soak`: the reliability suite with its long variants (CQRS_SOAK=1: 1M mixed calls, 30 s of 10×
 * overload), then one table of the figures each test printed.
 *
 *   node build.mjs --fast && node dist/bench/soak.js
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const vitest = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
const run = spawnSync(process.execPath, [vitest, 'run', 'packages/core/test/reliability'], {
  cwd: root,
  env: { ...process.env, CQRS_SOAK: '1', NO_COLOR: '1' },
  encoding: 'utf8',
  maxBuffer: 64 * 2 ** 20,
});
process.stdout.write(run.stdout);
process.stderr.write(run.stderr);

// Each reliability test prints one line `<label>: <JSON or text>`.
const rows: [string, string][] = [];
for (const line of run.stdout.split('\n')) {
  const match = /^(exactness|soak|overload|overload soak|fuzz|shutdown|runaway[^:]*): (.*)$/.exec(
    line.trim(),
  );
  if (match?.[1] === undefined || match[2] === undefined) continue;
  let text = match[2];
  try {
    const figures = JSON.parse(text) as Record<string, unknown>;
    text = Object.entries(figures)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join('  ');
  } catch {
    // not JSON: keep the text
  }
  rows.push([match[1], text]);
}
console.log('\nsoak summary');
console.log(`${'test'.padEnd(32)} figures`);
for (const [label, text] of rows) console.log(`${label.padEnd(32)} ${text}`);
process.exitCode = run.status ?? 1;
