import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/demo/main.js', import.meta.url));

describe('examples/demo', () => {
  it('runs the basic flow to the end and exits by itself', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [main], { timeout: 60_000 });
    expect(stdout).toContain('created #1 Alice Johnson <alice@example.com>');
    expect(stdout).toContain('#3: Carol Davis');
    expect(stdout).toMatch(/3 users fingerprinted on pool thread \d+, correlation id demo-1/);
    expect(stdout).toContain('unknown name: HANDLER_NOT_FOUND');
    expect(stdout).toContain('handler failure: HANDLER_FAILED');
    expect(stdout).toContain('(cause code USER_PROTECTED)');
    expect(stdout).toContain('caller abort: ABORTED');
    // Three creates, one protected delete; GetUser three times; the report twice (one aborted).
    expect(stdout).toMatch(/CreateUser\s+3 \/ 0 /);
    expect(stdout).toMatch(/DeleteUser\s+1 \/ 1 /);
    expect(stdout).toMatch(/GetUser\s+3 \/ 0 /);
    expect(stdout).toMatch(/BuildUserReport\s+2 \/ 1 /);
    expect(stdout).toContain('After close: CLOSED. Done.');
  }, 90_000);
});
