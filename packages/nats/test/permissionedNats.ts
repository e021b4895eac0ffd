import { spawn } from 'node:child_process';
import { findNatsServer } from '../../../examples/scaling-out/localNatsServer.js';

/** A nats-server started with a config file, on 127.0.0.1 and a port it picks. */
export interface ConfiguredNats {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts `nats-server -c <config>` with `env` added to its environment (for `$VAR` references in the file);
 * the listen address is overridden to 127.0.0.1 on a free port. `undefined` (with a loud warning) when no
 * nats-server binary is installed.
 */
export async function natsWithConfig(
  file: string,
  config: string,
  env: Record<string, string>,
): Promise<ConfiguredNats | undefined> {
  const bin = findNatsServer();
  if (bin === undefined) {
    console.warn(
      `\n!!! ${file}: NATS TESTS SKIPPED — no nats-server binary (apt-get install nats-server).\n`,
    );
    return undefined;
  }
  const child = spawn(bin, ['-c', config, '-a', '127.0.0.1', '-p', '-1'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start in 10 s:\n${log}`)), 10_000);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited:\n${log}`));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      log += chunk;
      const port = /Listening for client connections on [^\s]+:(\d+)/.exec(log)?.[1];
      if (port !== undefined && log.includes('Server is ready')) {
        clearTimeout(timer);
        child.stderr?.removeAllListeners('data');
        child.stderr?.resume();
        resolve(`nats://127.0.0.1:${port}`);
      }
    });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
