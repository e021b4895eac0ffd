import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../../dist/examples/event-driven/main.js', import.meta.url));

describe('examples/event-driven', () => {
  it('runs the order flow to the end and exits by itself', async () => {
    // execFile rejects on a non-zero exit code or on the timeout, so resolving means exit 0.
    const { stdout } = await promisify(execFile)(process.execPath, [main], { timeout: 20_000 });
    expect(stdout).toContain('events: OrderPlaced, InvoiceRendered');
    expect(stdout).toMatch(/#1 alice\s+€88\.99 {2}delivered: read-model, invoice, stock; failed: loyalty/);
    expect(stdout).toMatch(/#2 bob\s+€189\.00 {2}delivered: read-model, invoice, stock; failed: loyalty/);
    // The third order wants more monitors than are left: the process manager fails, the others go on.
    expect(stdout).toMatch(/#3 alice\s+€378\.00 {2}delivered: read-model, invoice; failed: stock, loyalty/);
    expect(stdout).toContain('alice: orders #1, #3, spent €466.99');
    expect(stdout).toContain('bob: orders #2, spent €189.00');
    for (const id of [1, 2, 3]) {
      expect(stdout).toMatch(new RegExp(`#${id}: \\d lines, digest [0-9a-f]{16}`));
      expect(stdout).toMatch(new RegExp(`invoice #${id} mailed to (alice|bob) \\(digest [0-9a-f]{16}\\)`));
    }
    expect(stdout).toContain('keyboard 9, mouse 8, monitor 1');
    expect(stdout).toContain('Dead letters (4, from onFailure)');
    expect(stdout).toContain(
      'OrderPlaced:loyalty order #1 (order-1): HANDLER_FAILED, cause PARTNER_DOWN: loyalty service unavailable (503)',
    );
    expect(stdout).toContain(
      'OrderPlaced:stock order #3 (order-3): HANDLER_FAILED, cause OUT_OF_STOCK: order #3: 2 monitor wanted, 1 left',
    );
    // Every attempt counted: the loyalty subscriber ran three times per order (two retries).
    expect(stdout).toMatch(/OrderPlaced:read-model\s+3\s+0\s/);
    expect(stdout).toMatch(/OrderPlaced:invoice\s+3\s+0\s/);
    expect(stdout).toMatch(/OrderPlaced:stock\s+3\s+1\s/);
    expect(stdout).toMatch(/OrderPlaced:loyalty\s+9\s+9\s/);
    expect(stdout).toMatch(/InvoiceRendered:mailer\s+3\s+0\s/);
    expect(stdout).toContain('After close: CLOSED. Done.');
  });
});
