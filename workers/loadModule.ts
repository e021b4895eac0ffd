/**
 * How a pool thread imports the modules the main thread registered (handler modules, the thread logger).
 *
 * JavaScript is a plain `import()`. A TypeScript module (.ts, .mts, .cts, .tsx) loads whenever the service
 * could load it in its main thread, and then some:
 * - Node ≥ 22.6 strips types itself (`--experimental-strip-types`, on by default from 22.18 and 23.6); pool
 *   threads inherit the flag with the main thread's execArgv.
 * - Under tsx (`node --import tsx`, `npx tsx`) on Node ≥ 22, the threads inherit `--import tsx`, which
 *   registers tsx's import hooks in each of them. On Node 20 tsx registers them in the main thread only (its
 *   require hook alone reaches threads), so a thread registers them itself, with tsx's `tsx/esm/api`.
 * - Otherwise, when Node cannot load the module (no type stripping, syntax that stripping does not cover, a
 *   `./x.js` import of a `./x.ts` file), a thread registers tsx itself when it finds it: the tsx the
 *   service was started with, else the one installed where the module is, else in the working directory.
 *   That is what makes `.ts` handler modules work under vitest, whose TypeScript support is main-thread only.
 * When nothing can load the module, the error says what would (see {@link cannotImport}).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Namespace = Record<string, unknown>;

const typeScriptFile = /\.(?:[cm]?ts|tsx)$/;
// Node 20 cannot strip types, tsx registers its import hooks in the main thread only there, and a failed
// import() of a URL keeps failing in that thread even once hooks are registered: so there, tsx goes first.
const major = Number(process.versions.node.split('.')[0]);
const tsxFirst = major < 22;
// Failures that tsx's loader may cure for a TypeScript module.
const curable = new Set([
  'ERR_UNKNOWN_FILE_EXTENSION',
  'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX',
  'ERR_INVALID_TYPESCRIPT_SYNTAX',
  'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING',
  'ERR_MODULE_NOT_FOUND',
]);

/** tsx's import hooks in this thread: registered once, by the first TypeScript module that needs them. */
let tsxHooks: Promise<void> | undefined;
/** What came of it: why a module still cannot load. */
let tsxState: { registered: true } | { registered: false; why: string } | undefined;

function isTypeScript(url: string): boolean {
  return typeScriptFile.test(new URL(url).pathname);
}

/** Imports `url` in this thread; for a TypeScript module, with tsx's hooks when Node alone cannot. */
export async function loadModule(url: string): Promise<Namespace> {
  if (!isTypeScript(url)) return (await import(url)) as Namespace;
  if (tsxFirst) {
    await registerTsx(url);
    return (await import(url)) as Namespace;
  }
  // With tsx's hooks already in place when the import began, a failure is the module's own.
  const hadTsx = tsxState?.registered === true;
  try {
    return (await import(url)) as Namespace;
  } catch (err) {
    if (hadTsx || !curable.has(codeOf(err))) throw err;
    await registerTsx(url);
    if (!tsxState?.registered) throw err;
  }
  // Under another URL: Node 22 keeps the failed module of a graph that failed to link (a missing ./x.js),
  // and would hand back the same failure for the same URL.
  return (await import(`${url}${url.includes('?') ? '&' : '?'}tsx`)) as Namespace;
}

/** Registers tsx's import hooks in this thread, once, if tsx is found; `tsxState` says how it went. */
function registerTsx(moduleUrl: string): Promise<void> {
  tsxHooks ??= (async () => {
    const api = tsxApi(moduleUrl);
    if (api === undefined) {
      tsxState = {
        registered: false,
        why: 'no tsx was found (where the module is, or in the working directory)',
      };
      return;
    }
    try {
      const { register } = (await import(pathToFileURL(api).href)) as { register: () => unknown };
      register();
      tsxState = { registered: true };
    } catch (err) {
      tsxState = { registered: false, why: `tsx (${api}) failed to register: ${firstLine(err)}` };
    }
  })();
  return tsxHooks;
}

/** The file of `tsx/esm/api` (ESM) of the tsx this service uses, if there is one. */
function tsxApi(moduleUrl: string): string | undefined {
  for (const dir of tsxCandidates(moduleUrl)) {
    const pkg = dir === undefined ? undefined : readJson(join(dir, 'package.json'));
    const entry = (pkg?.exports as Record<string, unknown> | undefined)?.['./esm/api'];
    const file = typeof entry === 'object' && entry !== null ? importTarget(entry) : undefined;
    if (dir !== undefined && file !== undefined) return join(dir, file);
  }
  return undefined;
}

function importTarget(entry: object): string | undefined {
  const target = (entry as { import?: unknown }).import;
  if (typeof target === 'string') return target;
  if (typeof target === 'object' && target !== null) {
    const file = (target as { default?: unknown }).default;
    if (typeof file === 'string') return file;
  }
  return undefined;
}

/** Where tsx may be: the one in this thread's execArgv (the main thread's), then by resolution. */
function* tsxCandidates(moduleUrl: string): Generator<string | undefined> {
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const inline = /^--(?:import|require|loader|experimental-loader)=(.*)$/.exec(arg);
    const value =
      inline?.[1] ??
      (/^(?:--import|--require|-r|--loader|--experimental-loader)$/.test(arg) ? argv[i + 1] : undefined);
    if (value === undefined) continue;
    if (/^tsx(?:\/|$)/.test(value)) yield resolveTsx(join(process.cwd(), 'noop.js'));
    else if (/[/\\]tsx[/\\]/.test(value))
      yield tsxRoot(value.startsWith('file:') ? fileURLToPath(value) : value);
  }
  if (moduleUrl.startsWith('file:')) yield resolveTsx(fileURLToPath(moduleUrl));
  yield resolveTsx(join(process.cwd(), 'noop.js'));
}

/** The directory of the tsx package `require` finds from `fromFile`. */
function resolveTsx(fromFile: string): string | undefined {
  try {
    return dirname(createRequire(fromFile).resolve('tsx/package.json'));
  } catch {
    return undefined;
  }
}

/** The tsx package directory holding `file` (e.g. …/node_modules/tsx/dist/loader.mjs). */
function tsxRoot(file: string): string | undefined {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (readJson(join(dir, 'package.json'))?.name === 'tsx') return dir;
  }
  return undefined;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function codeOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0] ?? '';
}

/**
 * The message of a module that cannot be imported: what failed and, for a TypeScript module Node could not
 * load, what would load it.
 */
export function cannotImport(url: string, err: unknown): string {
  const prefix = `cannot import ${url}: ${firstLine(err)}`;
  // Not a TypeScript matter, or tsx was registered and the module fails anyway: its own error says it all.
  if (!isTypeScript(url) || tsxState === undefined || tsxState.registered) return prefix;
  const why = tsxState.why;
  const useTsx = 'run the service with `node --import tsx` or `npx tsx` (npm install -D tsx)';
  const builtJs = 'or point inWorker at the compiled .js file';
  switch (codeOf(err)) {
    case 'ERR_UNKNOWN_FILE_EXTENSION':
      return tsxFirst
        ? `${prefix}. Node.js ${process.version} cannot run TypeScript by itself, and ${why}: ${useTsx}, move to Node.js ≥ 22.18 (type stripping), ${builtJs}`
        : `${prefix}. Type stripping is off in this Node.js (${process.version}), and ${why}: turn it on (the default from 22.18; --experimental-strip-types before), ${useTsx}, ${builtJs}`;
    case 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX':
    case 'ERR_INVALID_TYPESCRIPT_SYNTAX':
      return `${prefix}. Node's type stripping runs erasable TypeScript only (no enum, namespace or parameter properties), and ${why}: ${useTsx}, ${builtJs}`;
    case 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING':
      return `${prefix}. Node does not strip types under node_modules, and ${why}: ${useTsx}, ${builtJs}`;
    case 'ERR_MODULE_NOT_FOUND':
      // A `./x.js` import of a `./x.ts` file: as tsc wants imports written; tsx resolves it, Node does not.
      return /\.js'/.test(firstLine(err))
        ? `${prefix}. Under Node's type stripping a TypeScript module imports its neighbours by their .ts names (\`./messages.ts\`, with allowImportingTsExtensions or rewriteRelativeImportExtensions in tsconfig), and ${why}: ${useTsx}, ${builtJs}`
        : prefix;
    default:
      return prefix;
  }
}
