import { localNats } from '../../../examples/scaling-out/localNatsServer.js';

/**
 * The NATS server of a test file: `NATS_URL` (CI starts one), else a nats-server started for the file. When
 * neither can be had, the file's tests are skipped — loudly, so a missing server is never mistaken for a pass.
 */
export async function natsForTests(file: string) {
  const result = await localNats();
  if (!result.ok) {
    console.warn(
      `\n!!! ${file}: NATS TESTS SKIPPED — ${result.reason}. Install nats-server (apt-get install nats-server) or set NATS_URL.\n`,
    );
    return undefined;
  }
  return result.nats;
}
