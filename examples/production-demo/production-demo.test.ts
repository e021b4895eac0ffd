import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/production-demo/main.js', import.meta.url));

describe('examples/production-demo', () => {
  it('serves load through an outage, scrapes its own /metrics and exits 0 by itself', async () => {
    // execFile rejects on a non-zero exit code or when killed at the timeout (a hang fails the test).
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [main, '--duration', '3', '--rate', '100', '--threads', '2'],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/serving http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(stdout).toMatch(
      /progress \[[█░]{20}\] +\d+% calls=\d+ ok=\d+ failed=\d+ shed=\d+ \d+\/s \| p50\/p99 ms HashPassword [\d.]+\/[\d.]+, BuildReport .* \| loop delay p99 [\d.]+ ms \| /,
    );
    expect(stdout).toContain('outage begins');
    expect(stdout).toContain('outage ends');
    // The breaker opens during the outage and closes after it.
    expect(stdout).toMatch(/breaker Downstream: closed -> open/);
    expect(stdout).toMatch(/breaker Downstream: half-open -> closed/);
    expect(stdout.indexOf('Downstream: closed -> open')).toBeLessThan(
      stdout.indexOf('Downstream: half-open -> closed'),
    );
    // The scrape of its own /metrics.
    for (const [handler, kind] of [
      ['HashPassword', 'command'],
      ['BuildReport', 'query'],
      ['Downstream', 'query'],
    ]) {
      expect(stdout).toMatch(
        new RegExp(`cqrs_executions_total\\{handler="${handler}",kind="${kind}"\\} [1-9]\\d*`),
      );
    }
    // The final table: every handler, the breaker closed again, Downstream with failures from the outage.
    expect(stdout).toMatch(/handler\s+kind\s+executions\s+failures\s+p50\s+p95\s+p99\s+max\s+circuit/);
    expect(stdout).toMatch(/HashPassword\s+command\s+[1-9]\d*\s+0\s+.*closed/);
    expect(stdout).toMatch(/BuildReport\s+query\s+[1-9]\d*\s+0\s+.*closed/);
    expect(stdout).toMatch(/Downstream\s+query\s+[1-9]\d*\s+[1-9]\d*\s+.*closed/);
    expect(stdout).toMatch(/progress \[█{20}\] 100% calls=/);
    expect(stdout).toContain('closed buses and pool. Done.');
    // A worker handler's own log line (pino in its thread, through ctx.logger) carries the caller's correlation id.
    const threadLines = stderr
      .split('\n')
      .filter((line) => line.includes('dependency answered 503'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(threadLines.length).toBeGreaterThan(0);
    expect(threadLines[0]).toMatchObject({
      handler: 'Downstream',
      kind: 'query',
      correlationId: expect.stringMatching(/^req-\d+$/),
      requestId: expect.any(Number),
    });
  });
});
