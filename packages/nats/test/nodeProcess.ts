import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(
  new URL('../../../dist/packages/nats/test/fixtures/servingNode.js', import.meta.url),
);

/** A serving node in a process of its own: started, awaited until it serves, stopped or killed by the test. */
export interface NodeProcess {
  readonly id: string;
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with its exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

export async function startNode(id: string, natsUrl: string, prefix: string): Promise<NodeProcess> {
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, NATS_URL: natsUrl, NODE_ID: id, CQRS_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${id} not ready in 15 s:\n${out}`)), 15_000);
    const check = (): void => {
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node ${id} exited (${code}) before it was ready:\n${out}`));
    });
  });
  return { id, child, output: () => out, exited };
}
