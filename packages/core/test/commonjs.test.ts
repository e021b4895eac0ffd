import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The packages are ES modules; their exports maps end in a "default" condition, so `require()` finds them
// and Node (≥ 20.19, ≥ 22.12) loads them as ES modules. No top-level await anywhere in their graphs, or
// require() would throw ERR_REQUIRE_ASYNC_MODULE.
const service = fileURLToPath(new URL('./fixtures/commonjs/service.cjs', import.meta.url));

describe('CommonJS consumers', () => {
  it('require() every package and entry, and run worker handlers written in CommonJS', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [service], { timeout: 15_000 });
    expect(stderr).toBe('');
    expect(JSON.parse(stdout)).toEqual({
      square: 49,
      failure: 'HANDLER_FAILED',
      sameInstance: true,
      worker: 'function',
      prometheus: 'function',
      otel: 'function',
      otelWorker: 'function',
      nats: 'function',
    });
  });
});
