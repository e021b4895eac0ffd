// The service as a child process: started in one variant, stopped as an orchestrator stops it. The demo
// (main.ts) and the HTTP benchmark (bench/httpService.bench.ts) both load servers started this way.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Variant } from './service.js';

/**
 * Starts `server` (the built server.js) in `variant`, with `extraArgs` (e.g. `['--nice', '0']`) after the
 * variant's; resolves with its URL once it listens.
 */
export async function startServer(
  server: string,
  variant: Variant,
  threads: number,
  extraArgs: readonly string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const args = [server, '--variant', variant, '--threads', String(threads), ...extraArgs];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the ${variant} server exited (code ${String(code)}) before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const url = /^listening (http:\/\/\S+)/.exec(line)?.[1];
      if (url !== undefined) return url;
    }
    throw new Error(`the ${variant} server closed its output before listening`);
  })();
  const url = await Promise.race([listening, exited]);
  exited.catch(() => {});
  return { child, url };
}

/** SIGTERM, then the exit it should cause; a server still there 10 s later is killed and reported. */
export async function stopServer(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`a server exited with ${signal === null ? `code ${String(code)}` : signal} on SIGTERM`);
  }
}
