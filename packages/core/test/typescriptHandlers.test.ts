import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { defineQuery, inWorker, QueryBus, WorkerPool } from '@cqrs-pool/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

// Worker modules written in TypeScript, loaded by pool threads as they are: a small TypeScript service
// (fixtures/ts-service, its own project: not bundled by build.mjs, not in the root type check) run every way
// the README's "Handlers in TypeScript" lists, each printing what its .ts worker handler returned.
const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const service = fileURLToPath(new URL('./fixtures/ts-service/', import.meta.url));
const expected = createHash('sha256').update('abc').digest('hex');
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
// Node's own type stripping: from 22.6 behind --experimental-strip-types, on by default from 22.18 / 23.6.
const stripsTypes = major > 22 || (major === 22 && minor >= 6);
const stripFlags = (process.features as { typescript?: unknown }).typescript
  ? []
  : ['--experimental-strip-types'];
// The service's message, as the main thread of a test would define it.
const Fingerprint = defineQuery('Fingerprint', { input: z.object({ text: z.string() }) });

async function runService(args: string[], cwd = service): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, args, { cwd, timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
}

const temporary: string[] = [];
afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('worker modules in TypeScript', () => {
  it('load under node --import tsx', async () => {
    const out = await runService(['--import', 'tsx', 'server.ts']);
    expect(out).toMatchObject({ module: 'handlers.ts', sha256: expected });
  });

  it('load under npx tsx', async () => {
    const { stdout } = await run('npx', ['tsx', join(service, 'server.ts')], { cwd: root, timeout: 30_000 });
    expect(JSON.parse(stdout)).toMatchObject({ module: 'handlers.ts', sha256: expected });
  });

  it.runIf(stripsTypes)("load under Node's type stripping (Node ≥ 22.6)", async () => {
    const out = await runService([...stripFlags, 'server.ts']);
    expect(out).toMatchObject({ module: 'handlers.ts', sha256: expected });
  });

  it('load in a pool started by a vitest test, from the .ts file itself', async () => {
    const pool = new WorkerPool({ threads: 1 });
    const queries = new QueryBus({ pool });
    try {
      queries.registerHandler(
        Fingerprint,
        inWorker(new URL('./fixtures/ts-service/handlers.ts', import.meta.url), 'fingerprint'),
      );
      await queries.ready();
      await expect(queries.execute(Fingerprint, { text: 'abc' })).resolves.toMatchObject({
        sha256: expected,
      });
    } finally {
      await queries.close();
      await pool.close();
    }
  });

  it('load in a pool started by a vitest test when they import their neighbours as .js, as tsc wants', async () => {
    const pool = new WorkerPool({ threads: 1 });
    const queries = new QueryBus({ pool });
    try {
      queries.registerHandler(
        Fingerprint,
        inWorker(new URL('./fixtures/ts-service/tscStyleHandlers.ts', import.meta.url), 'fingerprint'),
      );
      await queries.ready();
      await expect(queries.execute(Fingerprint, { text: 'abc' })).resolves.toMatchObject({
        sha256: expected,
      });
    } finally {
      await queries.close();
      await pool.close();
    }
  });

  it('compiled by tsc, the same service runs its handlers.js with plain node', async () => {
    // Inside node_modules/.cache so that the compiled files resolve @cqrs-pool/core as the sources do.
    mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true });
    const out = mkdtempSync(join(root, 'node_modules', '.cache', 'ts-service-'));
    temporary.push(out);
    // --noCheck: this emits only; the service's types are the type check's business, not this test's.
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', join(service, 'tsconfig.json'), '--outDir', out, '--noCheck']);
    const result = await runService([join(out, 'server.js')], out);
    expect(result).toMatchObject({ module: 'handlers.js', sha256: expected });
  });

  it('that nothing can load fail ready() with INVALID_REGISTRATION saying what would load them', async () => {
    // A service in JavaScript, outside this repository (so no tsx is found), with Node's type stripping off.
    const app = mkdtempSync(join(tmpdir(), 'cqrs-pool-no-tsx-'));
    temporary.push(app);
    mkdirSync(join(app, 'node_modules', '@cqrs-pool'), { recursive: true });
    symlinkSync(join(root, 'packages', 'core'), join(app, 'node_modules', '@cqrs-pool', 'core'));
    symlinkSync(join(root, 'node_modules', 'zod'), join(app, 'node_modules', 'zod'));
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }');
    for (const file of ['handlers.ts', 'messages.ts']) cpSync(join(service, file), join(app, file));
    const main = `
      import { inWorker, QueryBus, WorkerPool, defineQuery } from '@cqrs-pool/core';
      import { z } from 'zod';
      const pool = new WorkerPool({ threads: 1 });
      const queries = new QueryBus({ pool });
      queries.registerHandler(defineQuery('Fingerprint', { input: z.object({}) }), inWorker(new URL('./handlers.ts', 'file://${app}/'), 'fingerprint'));
      const err = await queries.ready().then(() => undefined, (e) => e);
      await queries.close();
      await pool.close();
      console.log(JSON.stringify({ code: err?.code, message: err?.message }));`;
    const off = stripsTypes ? ['--no-experimental-strip-types'] : [];
    const result = await runService([...off, '--input-type=module', '-e', main], app);
    expect(result.code).toBe('INVALID_REGISTRATION');
    const message = String(result.message);
    expect(message).toContain(`Fingerprint: cannot import file://${app}/handlers.ts`);
    expect(message).toContain('no tsx was found');
    expect(message).toContain('`node --import tsx`');
    expect(message).toContain('compiled .js file');
    expect(message).toContain(stripsTypes ? 'Type stripping is off' : 'cannot run TypeScript by itself');
  });
});
