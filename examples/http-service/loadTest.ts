import { Agent, get } from 'node:http';
import autocannon from 'autocannon';

export interface LoadOptions {
  /** Seconds of load. */
  duration: number;
  /** Concurrent connections sending POST /hash, each waiting for its answer before the next request. */
  connections: number;
  /** GET /health probes per second while the load runs. */
  probeRate: number;
}

export interface LoadResult {
  hash: { okPerSecond: number; p50: number; p99: number; ok: number; non2xx: number; errors: number };
  health: { p50: number; p99: number; max: number; probes: number; failed: number };
}

const hashBody = JSON.stringify({ userId: 42, password: 'correct horse battery staple' });

/** A few hundred requests, unmeasured: threads started, code compiled, connections open. */
export async function warmUp(url: string, connections: number): Promise<void> {
  await autocannon({
    url: `${url}/hash`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: hashBody,
    connections,
    amount: Math.max(200, connections * 4),
  });
}

/**
 * Loads POST /hash with autocannon for `duration` seconds and, during the same time, probes GET /health at a
 * steady rate from this process: how long a cheap request waits while the service is busy. The probes are
 * open-loop (one leaves every 1/probeRate s whether or not the previous one answered), so a stalled
 * event loop shows as the full stall, not as fewer probes.
 */
export async function loadTest(url: string, options: LoadOptions): Promise<LoadResult> {
  const load = autocannon({
    url: `${url}/hash`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: hashBody,
    connections: options.connections,
    duration: options.duration,
  });
  const health = probe(`${url}/health`, options.probeRate, options.duration * 1_000);
  const [result, probes] = await Promise.all([load, health]);
  return {
    hash: {
      okPerSecond: result['2xx'] / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      ok: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
    },
    health: probes,
  };
}

async function probe(url: string, rate: number, durationMs: number): Promise<LoadResult['health']> {
  // Keep-alive, as a load balancer's health checks are; one socket per probe in flight.
  const agent = new Agent({ keepAlive: true });
  const latencies: number[] = [];
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const once = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      get(url, { agent }, (res) => {
        res.resume();
        res.once('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - started);
          else failed++;
          resolve();
        });
      }).once('error', () => {
        failed++;
        resolve();
      });
    });
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (performance.now() - started >= durationMs) {
        clearInterval(timer);
        resolve();
      } else inFlight.push(once());
    }, 1_000 / rate);
  });
  await Promise.all(inFlight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? NaN;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1) ?? NaN,
    probes: latencies.length + failed,
    failed,
  };
}
