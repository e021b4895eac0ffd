import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/shutdown/main.js', import.meta.url));

describe('examples/shutdown', () => {
  it('drains and exits 0 by itself on SIGTERM', async () => {
    const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    let signalled = false;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Killed after 30 s, only so that a hang (a handle left open) fails the test instead of stalling it: the
    // exit code is then null, not 0.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk;
      // Let it serve its trickle for a while, then ask it to stop.
      if (!before.includes('ready') && stdout.includes('ready')) {
        setTimeout(() => {
          signalled = true;
          child.kill('SIGTERM');
        }, 300);
      }
    });
    const code = await exited;
    clearTimeout(guard);
    expect(stderr).toBe('');
    expect(signalled).toBe(true);
    expect(code).toBe(0);
    const summary = stdout.match(
      /SIGTERM: drained (\d+) in flight in \d+ ms; (\d+) completed, none failed; pool threads 0/,
    );
    expect(summary, stdout).not.toBeNull();
    expect(Number(summary?.[2])).toBeGreaterThan(0);
  }, 45_000);
});
