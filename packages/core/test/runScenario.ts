import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fixtureUrl } from './fixtureUrl.js';

/** How a scenario program ended: its exit code (null when killed), and what it wrote. */
export interface ScenarioRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built fixture `name` (a whole program, test/fixtures/<name>.ts) as a child process with `args`.
 * It is killed after `hangMs` only to turn a hang (a call that never settles, a handle left open that keeps
 * it alive) into a failure: its exit code is then null.
 */
export function runScenario(
  name: string,
  args: readonly string[] = [],
  hangMs = 60_000,
): Promise<ScenarioRun> {
  const script = fileURLToPath(fixtureUrl(name));
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [script, ...args], { timeout: hangMs }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : (child.exitCode ?? null), stdout, stderr }),
    );
  });
}
