// Packs every workspace package as `npm pack` would for the registry (after the full build), checks each
// tarball, installs them into a scratch project and uses them from ESM, from CommonJS, and from `tsc`:
//   - the packed manifest has no "source" conditions and no scripts; every file its exports name is packed;
//   - every source a source map names is packed (no map points at a file only this repository has);
//   - no test file is packed;
//   - `import` and `require` of every entry work, and a TypeScript consumer type-checks in both module kinds;
//   - a TypeScript service (packages/core/test/fixtures/ts-service) runs its `.ts` worker handler from the
//     installed tarball under `node --import tsx`, `npx tsx` and, where this Node has it, type stripping.
//
//   node .ci/checkPack.mjs    (from the repository root, after `npm run build`)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'cqrs-pool-pack-'));
const problems = [];
const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

try {
  const packages = readdirSync(join(root, 'packages')).filter((p) =>
    existsSync(join(root, 'packages', p, 'package.json')),
  );
  const workspaces = packages.flatMap((p) => ['-w', `packages/${p}`]);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work, ...workspaces], root));

  const entries = [];
  for (const { name, filename, files } of packed) {
    const paths = new Set(files.map((f) => f.path));
    const dir = join(work, name.replace('/', '+'));
    run('mkdir', ['-p', dir]);
    run('tar', ['-xzf', join(work, filename), '-C', dir, '--strip-components=1']);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (pkg.scripts !== undefined) problems.push(`${name}: the packed manifest has scripts`);
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      entries.push(subpath === '.' ? name : `${name}/${subpath.slice(2)}`);
      for (const [condition, file] of Object.entries(target)) {
        if (condition === 'source')
          problems.push(`${name}: exports['${subpath}'] keeps a "source" condition`);
        if (!paths.has(file.slice(2)))
          problems.push(`${name}: exports['${subpath}'].${condition} ${file} is not packed`);
      }
    }
    for (const file of paths) {
      if (/\.test(-d)?\.ts$/.test(file)) problems.push(`${name}: test file ${file} is packed`);
      if (!file.endsWith('.map')) continue;
      const map = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      for (const source of map.sources) {
        const local = join(file, '..', source);
        if (!paths.has(local)) problems.push(`${name}: ${file} names ${source}, which is not packed`);
      }
      if ((map.sourcesContent ?? []).length !== map.sources.length)
        problems.push(`${name}: ${file} lacks sourcesContent`);
    }
  }

  // A consumer: the tarballs (their dependencies and peers from the registry) and zod, used three ways.
  const app = join(work, 'app');
  run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  const tarballs = packed.map((p) => join(work, p.filename));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs, 'zod'], app);
  const list = JSON.stringify(entries);
  run(
    process.execPath,
    ['-e', `for (const e of ${list}) if (Object.keys(require(e)).length === 0) throw new Error(e)`],
    app,
  );
  run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `for (const e of ${list}) if (Object.keys(await import(e)).length === 0) throw new Error(e)`,
    ],
    app,
  );
  const use = `import { CommandBus, defineCommand, isCqrsError } from '@cqrs-pool/core';
import { handle } from '@cqrs-pool/core/worker';
import { z } from 'zod';
const Create = defineCommand('Create', { input: z.object({ id: z.number() }), output: z.object({ id: z.number() }) });
export const create = handle(Create, (input) => ({ id: input.id }));
export async function call(bus: CommandBus): Promise<number> {
  const { id } = await bus.execute(Create, { id: 1 });
  return isCqrsError(id) ? 0 : id;
}
`;
  writeFileSync(join(app, 'esm.mts'), use);
  writeFileSync(join(app, 'cjs.cts'), use);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['esm.mts', 'cjs.cts'],
    }),
  );
  try {
    run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', app], app);
  } catch (err) {
    problems.push(`a TypeScript consumer does not type-check:\n${err.stdout}${err.stderr}`);
  }

  // The README's "Handlers in TypeScript" recipe, on the tarball: a fresh TypeScript service whose worker
  // module is a .ts file, run as TypeScript, no build step.
  const service = join(work, 'ts-service');
  cpSync(join(root, 'packages', 'core', 'test', 'fixtures', 'ts-service'), service, { recursive: true });
  writeFileSync(
    join(service, 'package.json'),
    JSON.stringify({ name: 'ts-service', private: true, type: 'module' }),
  );
  const tsx = `tsx@${JSON.parse(readFileSync(join(root, 'node_modules', 'tsx', 'package.json'), 'utf8')).version}`;
  run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarballs[packed.findIndex((p) => p.name === '@cqrs-pool/core')],
      'zod',
      tsx,
    ],
    service,
  );
  const [major, minor] = process.versions.node.split('.').map(Number);
  const ways = [
    ['node --import tsx', process.execPath, ['--import', 'tsx', 'server.ts']],
    ['npx tsx', 'npx', ['tsx', 'server.ts']],
  ];
  if (major > 22 || (major === 22 && minor >= 6)) {
    const flags = process.features.typescript ? [] : ['--experimental-strip-types'];
    ways.push(['type stripping', process.execPath, [...flags, 'server.ts']]);
  }
  for (const [way, cmd, args] of ways) {
    try {
      const out = JSON.parse(run(cmd, args, service).trim().split('\n').pop());
      if (out.module !== 'handlers.ts') problems.push(`ts-service under ${way}: ran ${out.module}`);
    } catch (err) {
      problems.push(`ts-service under ${way} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
  }
} catch (err) {
  problems.push(`${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (problems.length > 0) {
  console.error(`checkPack: ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(
  'checkPack: every package packs clean and loads from ESM, CommonJS and tsc; a .ts worker handler runs from the tarball under tsx',
);
