/**
 * A bare worker thread for the service-load bench's limit: told the size of a call, it waits for one 'go',
 * then runs calls back to back for `ms` with no messaging, and answers how many it ran.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { burn } from './burnWork.js';

const { iterations, ms } = workerData as { iterations: number; ms: number };
parentPort?.once('message', () => {
  let calls = 0;
  let sink = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    sink ^= burn(iterations);
    calls++;
  }
  parentPort?.postMessage({ calls, sink });
});
parentPort?.postMessage('ready');
