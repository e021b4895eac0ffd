import { startJetStreamServer } from './jetStreamServer.js';

/** A JetStream-enabled server for a test file. */
export interface TestJetStream {
  readonly url: string;
  /** Stops it when the file started it. */
  stop(): Promise<void>;
}

/**
 * The JetStream server of a test file: `NATS_JS_URL` (CI starts one), else a nats-server with `-js` started
 * for the file. When neither can be had, the file's tests are skipped — loudly, so a missing server is never
 * mistaken for a pass. Tests that kill the server start their own with `startJetStreamServer`.
 */
export async function jetStreamForTests(file: string): Promise<TestJetStream | undefined> {
  const fromEnv = process.env.NATS_JS_URL;
  if (fromEnv !== undefined && fromEnv !== '') return { url: fromEnv, stop: async () => {} };
  try {
    const server = await startJetStreamServer();
    return { url: server.url, stop: () => server.stop() };
  } catch (err) {
    console.warn(
      `\n!!! ${file}: JETSTREAM TESTS SKIPPED — ${(err as Error).message}. Install nats-server (apt-get install nats-server) or set NATS_JS_URL.\n`,
    );
    return undefined;
  }
}

/** A prefix of its own per test (and process): test files share CI's server, and tests share a file's. */
let next = 0;
export function uniquePrefix(tag: string): string {
  return `${tag}${process.pid}n${next++}`;
}
