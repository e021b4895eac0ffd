/**
 * A bare worker thread for the scaling bench's machine limit: told how much work to do, it waits for one
 * 'go', burns through all of it with no messaging, and says 'done' once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { burn } from './burnWork.js';

const { iterations, count } = workerData as { iterations: number; count: number };
parentPort?.once('message', () => {
  let sink = 0;
  for (let i = 0; i < count; i++) sink ^= burn(iterations);
  parentPort?.postMessage(sink);
});
parentPort?.postMessage('ready');
