import { describe, expect, it } from 'vitest';
import { runScenario } from './runScenario.js';

describe('a program whose last awaited call is answered on a run port', () => {
  it('stays alive until the call settles (no exit 13 between a batch answer and its early outcomes, or a stream answer and its last chunk)', async () => {
    const rounds = 3000;
    const { code, stdout, stderr } = await runScenario('lastMessageScenario', [String(rounds)], 120_000);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    // Σ n² for n < 40 per round; 0 + 1 + 2 per stream, two streams every tenth round.
    expect(JSON.parse(stdout)).toMatchObject({ rounds, sum: rounds * 20_540, items: (rounds / 10) * 2 * 3 });
    // The calls did travel in batches (else this test would not test early outcomes).
    expect(JSON.parse(stdout).batches).toBeGreaterThan(0);
  }, 150_000);
});
