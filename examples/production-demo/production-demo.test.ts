import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/production-demo/main.js', import.meta.url));

describe('examples/production-demo', () => {
  it('serves load through an outage, scrapes its own /metrics and exits 0 by itself', async () => {
    // execFile rejects on a non-zero exit code or when killed at the timeout (a hang fails the test).
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [main, '--duration', '6', '--rate', '30', '--threads', '2', '--linger', '0'],
      { timeout: 60_000 },
    );
    // What holds on any machine: it serves, reports, scrapes itself, prints its table and ends by itself.
    expect(stdout).toMatch(/serving http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(stdout).toMatch(
      /progress \[[█░]{20}\] +\d+% calls=\d+ ok=\d+ failed=\d+ shed=\d+ \d+\/s \| p50\/p99 ms HashPassword [\d.]+\/[\d.]+, BuildReport .* \| loop delay p99 [\d.]+ ms \| /,
    );
    // The scrape of its own /metrics: every handler was called (the first calls go out before any is shed).
    for (const [handler, kind] of [
      ['HashPassword', 'command'],
      ['BuildReport', 'query'],
      ['Downstream', 'query'],
    ]) {
      expect(stdout).toMatch(
        new RegExp(`cqrs_executions_total\\{handler="${handler}",kind="${kind}"\\} [1-9]\\d*`),
      );
    }
    // The outage stays in Downstream: the other handlers never fail with an error of their own (their
    // HANDLER_FAILED series are there from the start, at 0).
    expect(stdout).not.toMatch(
      /cqrs_failures_total\{handler="(HashPassword|BuildReport)",[^}]*code="HANDLER_FAILED"\} [1-9]/,
    );
    // Every call issued was answered, failed with a code, or shed by the client.
    const client = /client: (\d+) calls, (\d+) ok, (\d+) failed.*, (\d+) shed/.exec(stdout);
    expect(client, stdout).not.toBeNull();
    const [issued, ok, failed, shed] = (client ?? []).slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(ok + failed + shed).toBe(issued);
    // The final table: every handler.
    expect(stdout).toMatch(/handler\s+kind\s+executions\s+failures\s+p50\s+p95\s+p99\s+max\s+circuit/);
    for (const line of [
      /HashPassword\s+command\s+[1-9]\d*\s+\d+\s/,
      /BuildReport\s+query\s+[1-9]\d*\s+\d+\s/,
    ]) {
      expect(stdout).toMatch(line);
    }
    expect(stdout).toMatch(/Downstream\s+query\s+[1-9]\d*\s+\d+\s/);
    expect(stdout).toMatch(/progress \[█{20}\] 100% calls=/);
    expect(stdout).toContain('closed buses and pool. Done.');
    expect(stdout).not.toContain('lingering');

    // The outage's story runs on the wall clock at a fixed load, so it can only be told by a machine that kept
    // up with that load: 30 calls/s ask about a quarter of two threads, but a machine loaded many times over
    // sheds calls or times them out, and may even stall past the outage's window. Where nothing was shed or
    // timed out and the outage came and went, the story must hold; elsewhere it is reported, not checked.
    const keptUp =
      shed === 0 &&
      // (The failure series of every code are there from the start, at 0: only a count above 0 tells.)
      !/code="(TIMEOUT|OVERLOADED)"\} [1-9]/.test(stdout) &&
      stdout.includes('outage begins') &&
      stdout.includes('outage ends');
    if (!keptUp) {
      console.log(
        `production-demo: the machine did not keep up with the load (${client?.[0]}); story not checked`,
      );
      return;
    }
    // The breaker opens during the outage and closes after it.
    const opened = stdout.indexOf('breaker Downstream: closed -> open');
    expect(opened).toBeGreaterThan(stdout.indexOf('outage begins'));
    expect(stdout.indexOf('breaker Downstream: half-open -> closed')).toBeGreaterThan(opened);
    // The final table: every handler's breaker closed again, Downstream with failures from the outage only.
    expect(stdout).toMatch(/HashPassword\s+command\s+[1-9]\d*\s+0\s+.*closed/);
    expect(stdout).toMatch(/BuildReport\s+query\s+[1-9]\d*\s+0\s+.*closed/);
    expect(stdout).toMatch(/Downstream\s+query\s+[1-9]\d*\s+[1-9]\d*\s+.*closed/);
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
  }, 90_000);

  it('keeps serving the final counts on /metrics while it lingers, until a signal ends it cleanly', async () => {
    // A linger far longer than the test may take: only the SIGTERM below can end it.
    const child = spawn(
      process.execPath,
      [main, '--duration', '1', '--rate', '50', '--threads', '1', '--linger', '600'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = once(child, 'exit');
    let stdout = '';
    child.stdout.setEncoding('utf8');
    const lingering = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('--linger 0 skips this')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited (${code}) before lingering:\n${stdout}`)));
    });
    try {
      await lingering;
      const url = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(stdout)?.[1];
      expect(url).toBeDefined();
      // The final table's count, and the same count on /metrics after the table was printed.
      const inTable = /HashPassword\s+command\s+(\d+)\s/.exec(stdout)?.[1];
      expect(Number(inTable)).toBeGreaterThan(0);
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain(
        `cqrs_executions_total{handler="HashPassword",kind="command"} ${inTable}\n`,
      );
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
      expect(stdout).toMatch(/SIGTERM: linger cut short/);
      expect(stdout).toContain('closed buses and pool. Done.');
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
