import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findNatsServer } from './localNatsServer.js';

const main = fileURLToPath(new URL('../../dist/examples/scaling-out/main.js', import.meta.url));
const natsAvailable = Boolean(process.env.NATS_URL) || findNatsServer() !== undefined;
if (!natsAvailable) {
  console.warn('\n!!! examples/scaling-out: TEST SKIPPED — no NATS_URL and no nats-server binary found.\n');
}

describe.skipIf(!natsAvailable)('examples/scaling-out', () => {
  it('splits calls over two servers, survives one being killed, and exits 0 with every call answered', async () => {
    const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    // Killed after 30 s: a hang fails the test instead of stalling it.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(guard);
    expect(stderr).toBe('');
    expect(code, stdout).toBe(0);
    const served = (id: string) => Number(new RegExp(`\\| ${id} \\| (\\d+) \\|`).exec(stdout)?.[1]);
    expect(served('server-1'), stdout).toBeGreaterThan(0);
    expect(served('server-2'), stdout).toBeGreaterThan(0);
    expect(served('server-1') + served('server-2')).toBe(600);
    expect(stdout).toMatch(/\| failed \| 0 \|/);
    expect(stdout).toContain('every call got its result');
    expect(stdout).toMatch(/server-1 stopped: \{"received":\d+/);
  }, 40_000);
});
