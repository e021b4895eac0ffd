/**
 * A nats-server with JetStream for the tests, the chaos run and the benchmark: started on 127.0.0.1 (a free
 * port the server picks, or a given one) with file storage in a directory of its own, so that it can be
 * killed and started again on the same port and store — what a restart of the server does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer } from '../../../examples/scaling-out/localNatsServer.js';

export interface JetStreamServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Its JetStream store (`-sd`): what survives a kill. */
  readonly storeDir: string;
  /** SIGKILL, no goodbye: resolves when the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store; resolves when it is ready. */
  restart(): Promise<void>;
  /** SIGTERM and removes the store. */
  stop(): Promise<void>;
}

/** Starts one; rejects when there is no nats-server binary or it does not start within 15 s. */
export async function startJetStreamServer(
  options: { storeDir?: string; port?: number } = {},
): Promise<JetStreamServer> {
  const bin = findNatsServer();
  if (bin === undefined)
    throw new Error('no nats-server binary (PATH, /usr/sbin); apt-get install nats-server');
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'cqrs-js-'));
  let child: ChildProcess;
  let port: number;
  ({ child, port } = await launch(bin, storeDir, options.port ?? -1));
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async kill() {
      await exit(child, 'SIGKILL');
    },
    async restart() {
      await exit(child, 'SIGKILL');
      // The port may linger a moment after the kill: try again for a few seconds.
      for (let attempt = 0; ; attempt++) {
        try {
          ({ child } = await launch(bin, storeDir, port));
          return;
        } catch (err) {
          if (attempt >= 20) throw err;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    },
    async stop() {
      await exit(child, 'SIGTERM');
      if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

async function launch(
  bin: string,
  storeDir: string,
  port: number,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(bin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const found = await new Promise<number | Error>((resolve) => {
    let log = '';
    const timer = setTimeout(() => resolve(new Error(`nats-server did not start in 15 s:\n${log}`)), 15_000);
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
      const listening = /Listening for client connections on [^\s]+:(\d+)/.exec(log)?.[1];
      if (listening !== undefined && log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve(Number(listening));
      }
    });
  });
  if (found instanceof Error) {
    child.kill('SIGKILL');
    throw found;
  }
  // The log is no longer read; drained so the pipe never fills and blocks the server.
  child.stderr?.removeAllListeners('data');
  child.stderr?.resume();
  child.removeAllListeners('exit');
  return { child, port: found };
}

function exit(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(guard);
      resolve();
    });
    child.kill(signal);
  });
}
