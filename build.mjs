// Builds everything Node runs: each workspace package's ESM entries (from the "source" conditions of its
// exports map), the pool's thread entry as its own file beside @cqrs-pool/core, and the examples, benchmarks
// and test fixtures (run as built JavaScript, like a compiled service). `tsc` then emits the .d.ts files.
//
//   node build.mjs          everything
//   node build.mjs --fast   JavaScript only (what the tests and demos need), no .d.ts
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const root = import.meta.dirname;
const fast = process.argv.includes('--fast');
const started = performance.now();

// Source maps carry the sources' text (`sourcesContent`): a debugger shows them wherever the package lands.
const common = {
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  sourcesContent: true,
  logLevel: 'warning',
};

function packageDirs() {
  const dir = join(root, 'packages');
  const dirs = readdirSync(dir)
    .sort()
    .map((name) => join(dir, name))
    .filter((p) => existsSync(join(p, 'package.json')));
  // Dependencies first (core before all, nats before jetstream): a package's .d.ts import the declarations
  // of the @cqrs-pool packages it depends on.
  const manifest = (p) => JSON.parse(readFileSync(join(p, 'package.json'), 'utf8'));
  const byName = new Map(dirs.map((p) => [manifest(p).name, p]));
  const ordered = [];
  const visit = (p) => {
    if (ordered.includes(p)) return;
    for (const dep of Object.keys(manifest(p).dependencies ?? {})) {
      const q = byName.get(dep);
      if (q !== undefined && q !== p) visit(q);
    }
    if (!ordered.includes(p)) ordered.push(p);
  };
  for (const p of dirs) visit(p);
  return ordered;
}

/** Entry points of a package: `{ in: <source>, out: <dist name> }` for each export with a "source" condition. */
function entriesOf(pkgDir) {
  const { exports } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  return Object.values(exports ?? {})
    .filter((e) => typeof e === 'object' && e.source && e.default)
    .map((e) => ({
      in: join(pkgDir, e.source),
      out: e.default.replace(/^\.\/dist\//, '').replace(/\.js$/, ''),
    }));
}

/**
 * A package ships its `src` beside `dist`, so the paths its source maps name (what a stack trace shows
 * under tsx or `--enable-source-maps`) exist where it is installed. The thread entry also bundles files from
 * outside the package (workers/, comlink): those are written from the map's `sourcesContent` under
 * `dist/sources/` and the map points there, instead of at paths that exist only in this repository.
 */
function keepMapSourcesInPackage(pkgDir) {
  const dist = join(pkgDir, 'dist');
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.map'))) {
    const mapPath = join(dist, file);
    const map = JSON.parse(readFileSync(mapPath, 'utf8'));
    let changed = false;
    map.sources = map.sources.map((source, i) => {
      const absolute = resolve(dist, source);
      if (!relative(pkgDir, absolute).startsWith('..')) return source;
      // npm never packs a folder named node_modules: a dependency's file goes under deps/.
      const local = join('sources', relative(root, absolute).replace(/^node_modules\//, 'deps/'));
      mkdirSync(dirname(join(dist, local)), { recursive: true });
      writeFileSync(join(dist, local), map.sourcesContent[i]);
      changed = true;
      return local;
    });
    if (changed) writeFileSync(mapPath, JSON.stringify(map));
  }
}

/**
 * The TypeScript files under `dir` to bundle. A folder with a tsconfig.json of its own is a project of its
 * own, run as TypeScript (test/fixtures/ts-service): left out.
 */
function listTs(dir) {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  const projects = files.filter((d) => d.name === 'tsconfig.json').map((d) => `${d.parentPath}/`);
  return files
    .filter((d) => d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') && !d.name.endsWith('.test.ts'))
    .map((d) => join(d.parentPath, d.name))
    .filter((p) => !p.includes(`${'/'}dist${'/'}`) && !projects.some((project) => p.startsWith(project)));
}

async function buildPackages() {
  for (const pkgDir of packageDirs()) {
    const entryPoints = entriesOf(pkgDir);
    rmSync(join(pkgDir, 'dist'), { recursive: true, force: true });
    await build({
      ...common,
      entryPoints,
      outdir: join(pkgDir, 'dist'),
      bundle: true,
      // One copy of shared code (CqrsError, serialization) across index and worker.
      splitting: true,
      chunkNames: 'chunk-[hash]',
      packages: 'external',
    });
    // The thread entry ships inside @cqrs-pool/core, found beside the bundle via import.meta.url. CommonJS,
    // self-contained: piscina loads it with require() first, and Node 20's require() of an ES module aborts
    // the whole process now and then while pool threads come and go (native assertions in module_wrap.cc,
    // seen in the soak run). Handler modules are still ES modules, loaded with import().
    if (pkgDir.endsWith(`${'/'}core`)) {
      await build({
        ...common,
        format: 'cjs',
        entryPoints: [join(root, 'workers/handlerHost.ts')],
        outfile: join(pkgDir, 'dist/handlerHost.cjs'),
        bundle: true,
      });
    }
    keepMapSourcesInPackage(pkgDir);
  }
}

/**
 * Examples, benchmarks and test fixtures: one bundle per file into dist/, keeping their paths. Relative
 * imports are inlined (a fixture may use core internals); packages stay imports, so `@cqrs-pool/*` resolve
 * to the built packages as a user's code would.
 */
async function buildRunnables() {
  const entryPoints = [
    ...listTs(join(root, 'examples')),
    ...listTs(join(root, 'bench')),
    ...packageDirs().flatMap((p) => listTs(join(p, 'test', 'fixtures'))),
  ];
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  if (entryPoints.length === 0) return;
  await build({
    ...common,
    entryPoints,
    outbase: root,
    outdir: join(root, 'dist'),
    bundle: true,
    packages: 'external',
  });
}

function emitDeclarations() {
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  for (const pkgDir of packageDirs()) {
    execFileSync(tsc, ['-p', join(pkgDir, 'tsconfig.build.json')], { stdio: 'inherit' });
  }
}

await buildPackages();
await buildRunnables();
if (!fast) emitDeclarations();
const packages = packageDirs()
  .map((p) => relative(root, p))
  .join(', ');
console.log(
  `built ${packages}${fast ? '' : ' (+ .d.ts)'}, examples, bench, fixtures in ${Math.round(performance.now() - started)} ms`,
);
