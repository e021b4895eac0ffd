// Runs inside pool threads: imported by the thread entry, never by the main thread.
import { scryptSync } from 'node:crypto';
import { handle } from '@cqrs-pool/core/worker';
import { BuildReport, Downstream, HashPassword } from './messages.js';

export const hashPassword = handle(HashPassword, (input) => {
  const salt = `user-${input.userId}`;
  const key = scryptSync(input.password, salt, 32, { N: input.cost, r: 8, p: 1 });
  return { userId: input.userId, hash: key.toString('hex') };
});

export const buildReport = handle(BuildReport, (input, ctx) => {
  const values = new Float64Array(input.size);
  // A seeded LCG, so equal inputs give equal reports (which is what makes the result cacheable).
  let state = input.seed >>> 0 || 1;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    // Roughly log-normal, like latencies or order sizes.
    const v = Math.exp((state / 4_294_967_296) * 4);
    values[i] = v;
    sum += v;
  }
  if (ctx.isCancelled()) throw new Error('report cancelled');
  values.sort();
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  const at = (q: number): number => values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
  return {
    size: values.length,
    mean,
    stddev: Math.sqrt(squares / values.length),
    min: at(0),
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: at(1),
  };
});

export const downstream = handle(Downstream, (input, ctx) => {
  // A little CPU work standing in for (de)serialising the dependency's answer.
  let h = input.requestId >>> 0;
  for (let i = 0; i < 50_000; i++) h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  if (input.outage) {
    // Through the pool's threadLogger: the line carries handler, kind and the caller's correlationId.
    ctx.logger.warn({ requestId: input.requestId }, 'dependency answered 503');
    throw Object.assign(new Error('downstream unavailable (503)'), { code: 'DOWNSTREAM_UNAVAILABLE' });
  }
  return { requestId: input.requestId, checksum: h };
});
