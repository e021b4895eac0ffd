/**
 * A NATS server for the demo, the tests and the benchmark: the one `NATS_URL` names, else a `nats-server`
 * started here on 127.0.0.1 on a free port (and stopped by `stop()`), else `undefined` with the reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface LocalNats {
  /** `nats://127.0.0.1:<port>`, or `NATS_URL`. */
  readonly url: string;
  /** True when this module started the server (so `stop` stops it). */
  readonly started: boolean;
  /** Stops the server if it was started here; resolves when it has exited. */
  stop(): Promise<void>;
}

export type LocalNatsResult = { ok: true; nats: LocalNats } | { ok: false; reason: string };

/** Where `nats-server` is: `NATS_SERVER_BIN`, the PATH, or Debian's /usr/sbin. */
export function findNatsServer(): string | undefined {
  const candidates = [
    process.env.NATS_SERVER_BIN,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => dir && join(dir, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/bin/nats-server',
    '/usr/local/bin/nats-server',
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** The NATS server to use: `NATS_URL` if set, else one started here. */
export async function localNats(): Promise<LocalNatsResult> {
  const fromEnv = process.env.NATS_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    return { ok: true, nats: { url: fromEnv, started: false, stop: async () => {} } };
  }
  const bin = findNatsServer();
  if (bin === undefined) {
    return { ok: false, reason: 'NATS_URL is not set and no nats-server binary was found (PATH, /usr/sbin)' };
  }
  // Port -1: the server picks a free port and logs it, so there is no race for a port picked beforehand.
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string | Error>((resolve) => {
    let log = '';
    const timer = setTimeout(() => resolve(new Error(`nats-server did not start in 10 s:\n${log}`)), 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(new Error(`nats-server exited with ${code}:\n${log}`));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      log += chunk;
      const port = /Listening for client connections on [^\s]+:(\d+)/.exec(log)?.[1];
      if (port !== undefined && log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(`nats://127.0.0.1:${port}`);
      }
    });
  });
  if (url instanceof Error) {
    child.kill('SIGKILL');
    return { ok: false, reason: url.message };
  }
  // The log is no longer needed; resumed so the pipe never fills and blocks the server.
  child.stderr?.removeAllListeners('data');
  child.stderr?.resume();
  return { ok: true, nats: { url, started: true, stop: () => stopServer(child) } };
}

function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(guard);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
