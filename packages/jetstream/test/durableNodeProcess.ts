import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Effect } from './fixtures/durableMessages.js';

const entry = fileURLToPath(
  new URL('../../../dist/packages/jetstream/test/fixtures/durableNode.js', import.meta.url),
);

/** A durable serving node in a process of its own, killed or stopped by the test. */
export interface DurableNodeProcess {
  readonly id: string;
  readonly child: ChildProcess;
  output(): string;
  /** Resolves once it printed `text`. */
  printed(text: string, withinMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
  kill(): Promise<void>;
}

export async function startDurableNode(
  id: string,
  env: { NATS_URL: string; CQRS_PREFIX: string; EFFECTS_FILE: string } & Record<string, string>,
): Promise<DurableNodeProcess> {
  const child = spawn(process.execPath, [entry], {
    env: { ...process.env, ...env, NODE_ID: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    out += chunk;
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const printed = (text: string, withinMs = 20_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!out.includes(text)) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`node ${id} did not print '${text}' within ${withinMs} ms:\n${out}`));
      }, withinMs);
      listeners.add(check);
      check();
    });
  await Promise.race([
    printed('ready'),
    exited.then((code) => {
      throw new Error(`node ${id} exited (${code}) before it was ready:\n${out}`);
    }),
  ]);
  return {
    id,
    child,
    output: () => out,
    printed,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Every effect line of the files (a file not yet written counts as empty). */
export function readEffects(files: readonly string[]): Effect[] {
  return files.flatMap((file) => {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Effect);
  });
}

/**
 * Checks per-key order over effects from any number of nodes: sorted by start time, each key's effects have
 * non-decreasing `seq` (a redelivered duplicate repeats its seq), and none starts before the previous one of
 * its key ended. Returns the violations, described.
 */
export function orderViolations(effects: readonly Effect[]): string[] {
  const byKey = new Map<string, Effect[]>();
  for (const e of effects) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
  const problems: string[] = [];
  for (const [key, list] of byKey) {
    list.sort((a, b) => (BigInt(a.start) < BigInt(b.start) ? -1 : 1));
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as Effect;
      const cur = list[i] as Effect;
      if (cur.seq < prev.seq) problems.push(`${key}: seq ${cur.seq} ran after seq ${prev.seq}`);
      if (BigInt(cur.start) < BigInt(prev.end))
        problems.push(`${key}: seq ${cur.seq} overlapped seq ${prev.seq}`);
    }
  }
  return problems;
}
