// The package.json a workspace package is packed with (`npm pack`, `npm publish`): npm runs this as the
// package's `prepack` and `postpack` scripts, in the package directory.
//
//   node ../../packManifest.mjs prepack    checks the build, strips what only this repository uses
//   node ../../packManifest.mjs postpack   puts the repository's package.json back
//
// In this repository the exports map carries "source" conditions (./src/*.ts), so that `tsc` (with
// `customConditions: ["source"]`) checks every package against the others' sources without a build. Packed,
// they would be a trap: a consumer whose tools resolve "source" (a common custom condition) would load our
// TypeScript with its own compiler settings. The packed manifest has `types` and `default` only; the
// `scripts` that run this file are dropped too (they point into this repository).
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.cwd();
const manifest = join(dir, 'package.json');
// Beside package.json while the tarball is made; not in `files`, so never packed.
const kept = join(dir, '.package.json.repo');

function fail(message) {
  console.error(`packManifest: ${message}`);
  process.exit(1);
}

/** Every file an export names must exist: `npm pack` after `npm test` (a --fast build) has no .d.ts. */
function checkBuilt(exports) {
  for (const [path, target] of Object.entries(exports)) {
    for (const [condition, file] of Object.entries(target)) {
      if (condition === 'source') continue;
      if (!existsSync(join(dir, file))) {
        fail(
          `exports['${path}'].${condition}: ${file} is missing; run \`npm run build\` (the full build) first`,
        );
      }
    }
  }
  const maps = readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.map'));
  for (const map of maps) {
    const { sources = [], sourcesContent = [] } = JSON.parse(readFileSync(join(dir, 'dist', map), 'utf8'));
    if (sourcesContent.length !== sources.length) fail(`dist/${map} lacks sourcesContent`);
  }
}

function prepack() {
  if (existsSync(kept))
    fail(`${kept} exists: a previous pack did not finish; restore it as package.json first`);
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text);
  checkBuilt(pkg.exports ?? {});
  for (const target of Object.values(pkg.exports ?? {})) delete target.source;
  delete pkg.scripts;
  renameSync(manifest, kept);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}

function postpack() {
  if (existsSync(kept)) renameSync(kept, manifest);
}

const step = process.argv[2];
if (step === 'prepack') prepack();
else if (step === 'postpack') postpack();
else fail(`unknown step ${JSON.stringify(step)} (prepack or postpack)`);
