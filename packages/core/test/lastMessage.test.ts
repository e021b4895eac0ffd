import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fixtureUrl } from './fixtureUrl.js';

describe('a program whose last awaited call is answered on a run port', () => {
  it('stays alive until the call settles (no exit 13 between a batch answer and its early outcomes, or a stream answer and its last chunk)', async () => {
    const rounds = 3000;
    const script = fileURLToPath(fixtureUrl('lastMessageScenario'));
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      // Killed after 120 s, only to turn a hang into a failure.
      const child = execFile(
        process.execPath,
        [script, String(rounds)],
        { timeout: 120_000 },
        (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : (child.exitCode ?? null), stdout, stderr }),
      );
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    // Σ n² for n < 40 per round; 0 + 1 + 2 per stream, two streams every tenth round.
    expect(JSON.parse(stdout)).toMatchObject({ rounds, sum: rounds * 20_540, items: (rounds / 10) * 2 * 3 });
    // The calls did travel in batches (else this test would not test early outcomes).
    expect(JSON.parse(stdout).batches).toBeGreaterThan(0);
  }, 150_000);
});
