import { execFile, spawn } from 'node:child_process';
import { scryptSync } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as ServiceModule from './service.js';

// The built service: its pool threads import the built handlers.js beside it.
const { createService } = (await import(
  new URL('../../dist/examples/http-service/service.js', import.meta.url).href
)) as typeof ServiceModule;

type Service = Awaited<ReturnType<typeof createService>>;

/** Starts a service on an ephemeral port of 127.0.0.1; returns it with its base URL. */
async function serve(options: ServiceModule.ServiceOptions): Promise<{ service: Service; url: string }> {
  const service = await createService(options);
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  return { service, url: `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}` };
}

function postHash(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/hash`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The value of one series in a Prometheus text exposition, or undefined when absent. */
function series(exposition: string, name: string): number | undefined {
  const line = exposition.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

const good = { userId: 7, password: 'correct horse battery staple' };
const expectedHash = scryptSync(good.password, 'user-7', 32, { N: 1 << 11, r: 8, p: 1 }).toString('hex');

describe('examples/http-service, pool variant', () => {
  let service: Service;
  let url: string;
  beforeAll(async () => {
    ({ service, url } = await serve({ variant: 'pool', threads: 1 }));
  });
  afterAll(() => service.close());

  it('hashes a good body in the pool: 200 and the scrypt hash', async () => {
    const res = await postHash(url, good);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ userId: 7, hash: expectedHash });
  });

  it('answers a bad body with 400 and the zod issues, without running the handler', async () => {
    const before = await (await fetch(`${url}/metrics`)).text();
    const res = await postHash(url, { userId: 0, password: 'short' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; issues: { path: unknown[] }[] };
    expect(body.error).toBe('VALIDATION');
    expect(body.issues.map((i) => i.path)).toEqual([['userId'], ['password']]);
    // An unknown field is refused too (the schema is strict).
    const extra = await postHash(url, { ...good, admin: true });
    expect(extra.status).toBe(400);
    expect(((await extra.json()) as { issues: { code: string }[] }).issues[0]?.code).toBe(
      'unrecognized_keys',
    );
    // Refused before the handler: counted as failures with code VALIDATION, no latency recorded.
    const after = await (await fetch(`${url}/metrics`)).text();
    const validationFailures = 'cqrs_failures_total{handler="HashPassword",kind="command",code="VALIDATION"}';
    expect((series(after, validationFailures) ?? 0) - (series(before, validationFailures) ?? 0)).toBe(2);
  });

  it("leaves a body that is not JSON to fastify's own 400", async () => {
    const res = await fetch(`${url}/hash`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{ not json',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
  });

  it('serves GET /users/:id from the cache the second time: the store is read once', async () => {
    const reads = async (): Promise<number | undefined> =>
      series(await (await fetch(`${url}/metrics`)).text(), 'user_store_reads_total');
    const before = await reads();
    const first = await fetch(`${url}/users/42`);
    const second = await fetch(`${url}/users/42`);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    const user = { id: 42, username: 'user42', email: 'user42@example.com' };
    expect(await first.json()).toEqual(user);
    expect(await second.json()).toEqual(user);
    expect((await reads()) ?? Number.NaN).toBe((before ?? 0) + 1);
  });

  it('answers 404 for a user that does not exist, 400 for an id that is not a number', async () => {
    expect((await fetch(`${url}/users/5000`)).status).toBe(404);
    const bad = await fetch(`${url}/users/abc`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('VALIDATION');
  });

  it('reports health as JSON from healthSnapshot', async () => {
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      pool: { threads: 1, maxQueue: 1000 },
      circuits: { 'command:HashPassword': 'closed', 'query:GetUser': 'closed' },
      handlers: 2,
    });
  });

  it('exports Prometheus metrics, HashPassword executions among them', async () => {
    await postHash(url, good);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(series(text, 'cqrs_executions_total{handler="HashPassword",kind="command"}')).toBeGreaterThan(0);
    expect(text).toContain('cqrs_pool_threads 1');
  });
});

describe('examples/http-service, rate limited', () => {
  let service: Service;
  let url: string;
  beforeAll(async () => {
    // One call a minute: the second is over the limit whatever the machine's speed.
    ({ service, url } = await serve({
      variant: 'pool',
      threads: 1,
      rateLimit: { limit: 1, windowMs: 60_000, burst: 1 },
    }));
  });
  afterAll(() => service.close());

  it('answers 429 with Retry-After in seconds from retryAfterMs', async () => {
    expect((await postHash(url, good)).status).toBe(200);
    const res = await postHash(url, good);
    expect(res.status).toBe(429);
    const body = (await res.json()) as { error: string; retryAfterMs: number };
    expect(body.error).toBe('RATE_LIMITED');
    expect(body.retryAfterMs).toBeGreaterThan(0);
    expect(body.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(res.headers.get('retry-after')).toBe(String(Math.ceil(body.retryAfterMs / 1000)));
  });
});

describe('examples/http-service, the other variants', () => {
  it.each(['inline', 'piscina'] as const)(
    '%s answers as the pool does: the same hash, the same 400',
    async (variant) => {
      const { service, url } = await serve({ variant, threads: 1 });
      try {
        const res = await postHash(url, good);
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ userId: 7, hash: expectedHash });
        const bad = await postHash(url, { userId: 'seven' });
        expect(bad.status).toBe(400);
        const body = (await bad.json()) as { error: string; issues: { path: unknown[] }[] };
        expect(body.error).toBe('VALIDATION');
        expect(body.issues.map((i) => i.path)).toEqual([['userId'], ['password']]);
        expect((await fetch(`${url}/health`)).status).toBe(200);
      } finally {
        await service.close();
      }
    },
  );
});

describe('examples/http-service, the demo', () => {
  it('starts the service, loads it with autocannon, prints the table and exits 0 by itself', async () => {
    const main = fileURLToPath(new URL('../../dist/examples/http-service/main.js', import.meta.url));
    // execFile rejects on a non-zero exit code (a server that did not close cleanly on SIGTERM included).
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, '--duration', '1', '--connections', '2', '--threads', '1', '--variants', 'pool'],
      { timeout: 60_000 },
    );
    expect(stdout).toMatch(/pool: http:\/\/127\.0\.0\.1:\d+ loaded/);
    expect(stdout).toMatch(
      /variant\s+POST \/hash runs on\s+\/hash ok\/s\s+p50 ms\s+p99 ms\s+non-2xx\s+\/health p50 ms/,
    );
    // Every request answered 2xx (non-2xx 0), and /health answered while /hash was loaded.
    expect(stdout).toMatch(
      /\npool\s+cqrs-pool, 1 thread\s+[1-9]\d*\s+[\d.]+\s+[\d.]+\s+0\s+[\d.]+\s+[\d.]+\s+[\d.]+\n/,
    );
    expect(stdout).not.toContain('probes failed');
  }, 90_000);
});

describe('examples/http-service, the server alone', () => {
  it.each([
    ['20', 'from 0 to 19'],
    ['-1', '>= 0'],
  ])('refuses --nice %s with a usage error (exit 2) before it starts', async (nice, told) => {
    const server = fileURLToPath(new URL('../../dist/examples/http-service/server.js', import.meta.url));
    const failed = await promisify(execFile)(process.execPath, [server, '--nice', nice], {
      timeout: 30_000,
    }).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain(`--nice must be an integer ${told}`);
  });

  it('serves until SIGTERM, then closes gracefully and exits 0', async () => {
    const server = fileURLToPath(new URL('../../dist/examples/http-service/server.js', import.meta.url));
    const child = spawn(process.execPath, [server, '--variant', 'inline'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    let stdout = '';
    child.stdout.setEncoding('utf8');
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: string) => {
          stdout += chunk;
          const found = /^listening (http:\/\/127\.0\.0\.1:\d+) \(variant inline, main thread\)$/m.exec(
            stdout,
          );
          if (found?.[1] !== undefined) resolve(found[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited (${code}) before listening: ${stdout}`)));
      });
      expect((await fetch(`${url}/health`)).status).toBe(200);
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
      expect(stdout).toContain('SIGTERM: closed');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
