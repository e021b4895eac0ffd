import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/simplified-demo/main.js', import.meta.url));

describe('examples/simplified-demo', () => {
  it('runs the e-commerce flow to the end and exits by itself', async () => {
    // execFile rejects on a non-zero exit code or on the timeout (a hang guard), so resolving means exit 0.
    const { stdout } = await promisify(execFile)(process.execPath, [main], { timeout: 60_000 });
    expect(stdout).toContain('created user #1 Alice <alice@example.com>');
    expect(stdout).toContain('created user #2 Bob <bob@example.com>');
    expect(stdout).toContain('created product #1 Keyboard €49.99, stock 10');
    expect(stdout).toContain('created product #3 Monitor €189.00, stock 2');
    expect(stdout).toContain('handler ran 1 time(s): second GetProduct served from cache');
    expect(stdout).toMatch(
      /subtotal €449\.85, discount €32\.49, total €417\.36 \(quote [0-9a-f]{16}, pool thread \d+\)/,
    );
    expect(stdout).toContain('order placed: #1 for user 1, total €338.97');
    expect(stdout).toContain('stock after order: Keyboard 7 (handler ran again: true)');
    expect(stdout).toContain('user 1 has 1 order(s): #1');
    expect(stdout).toContain('bad email: VALIDATION');
    expect(stdout).toContain('too many monitors: HANDLER_FAILED (cause code OUT_OF_STOCK');
    expect(stdout).toContain('Monitor stock unchanged by the refused order: 1');
    // pino at warn: one JSON line for the refusal, one for the failure, none for successes.
    expect(stdout).toMatch(/"code":"VALIDATION".*"msg":"command CreateUser error VALIDATION/);
    expect(stdout).toMatch(/"code":"HANDLER_FAILED".*"msg":"command PlaceOrder error HANDLER_FAILED/);
    expect(stdout).not.toContain('"outcome":"ok"');
    expect(stdout).toMatch(/handler\s+kind\s+executions\s+failures\s+p50\s+p99/);
    expect(stdout).toMatch(/CreateUser\s+command\s+3\s+1\s/);
    expect(stdout).toMatch(/CreateProduct\s+command\s+3\s+0\s/);
    expect(stdout).toMatch(/PlaceOrder\s+command\s+2\s+1\s/);
    expect(stdout).toMatch(/GetProduct\s+query\s+\d+\s+0\s/);
    expect(stdout).toMatch(/ListOrders\s+query\s+1\s+0\s/);
    expect(stdout).toMatch(/PriceQuote\s+query\s+1\s+0\s/);
    expect(stdout).toContain('Done.');
  }, 90_000);
});
