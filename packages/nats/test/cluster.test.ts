import { isCqrsError, QueryBus, retry } from '@cqrs-pool/core';
import { RemoteClient, remote } from '@cqrs-pool/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compute } from './fixtures/clusterMessages.js';
import type { NodeProcess } from './nodeProcess.js';
import { startNode } from './nodeProcess.js';
import { natsForTests } from './testNats.js';

const nats = await natsForTests('cluster.test.ts');
// Own subjects: other test files may share the NATS server (CI's NATS_URL) at the same time.
const prefix = `c${process.pid}`;

type Outcome = { ok: true; node: string } | { ok: false; err: unknown };

/**
 * Sends `total` Compute calls, `concurrency` at a time, and calls `onProgress` after each settles. Every
 * call's outcome is kept: a call that never settles would leave this pending, and the test times out.
 */
async function drive(
  bus: QueryBus,
  total: number,
  concurrency: number,
  onProgress: (settled: number) => void = () => {},
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const n = next++;
      try {
        const result = await bus.execute(Compute, { n, spinMs: 2 });
        outcomes.push({ ok: true, node: result.node });
      } catch (err) {
        outcomes.push({ ok: false, err });
      }
      onProgress(outcomes.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

function countByNode(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) if (o.ok) counts[o.node] = (counts[o.node] ?? 0) + 1;
  return counts;
}

describe.skipIf(nats === undefined)('a cluster of serving processes', () => {
  let nc: NatsConnection;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    nc = await connect({ servers: nats?.url ?? '' });
    nodes.push(
      ...(await Promise.all([
        startNode('A', nats?.url ?? '', prefix),
        startNode('B', nats?.url ?? '', prefix),
      ])),
    );
  });

  afterAll(async () => {
    for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    await nc?.close();
    await nats?.stop();
  });

  it('splits the load across the serving processes, and the caller counts every call', async () => {
    const queries = new QueryBus();
    queries.registerHandler(Compute, remote(nc, { prefix }));
    const outcomes = await drive(queries, 200, 16);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const counts = countByNode(outcomes);
    // A queue group picks a member at random: with 200 calls each of two nodes gets far more than 20.
    expect(counts.A).toBeGreaterThan(20);
    expect(counts.B).toBeGreaterThan(20);
    expect(queries.getMetrics().handlers.Compute).toMatchObject({
      executions: 200,
      failures: 0,
      inFlight: 0,
    });
  });

  it('a node stopped gracefully mid-run (SIGTERM) finishes what it has: no call fails', async () => {
    const leaving = await startNode('C', nats?.url ?? '', prefix);
    nodes.push(leaving);
    const queries = new QueryBus();
    queries.registerHandler(Compute, remote(nc, { prefix }));
    let signalled = false;
    const outcomes = await drive(queries, 300, 16, (settled) => {
      if (settled >= 80 && !signalled) {
        signalled = true;
        leaving.child.kill('SIGTERM');
      }
    });
    expect(await leaving.exited).toBe(0);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(countByNode(outcomes).C).toBeGreaterThan(0);
    const stats = JSON.parse(/stats (.*)/.exec(leaving.output())?.[1] ?? '{}') as Record<string, number>;
    expect(stats).toMatchObject({ failed: 0, malformed: 0, inFlight: 0 });
    expect(stats.succeeded).toBe(countByNode(outcomes).C);
    const metrics = JSON.parse(/metrics (.*)/.exec(leaving.output())?.[1] ?? '{}') as Record<string, number>;
    expect(metrics).toMatchObject({ executions: stats.succeeded, failures: 0, inFlight: 0 });
  });

  it('a node killed mid-run (SIGKILL): every call settles, its lost requests time out and retry elsewhere', async () => {
    const doomed = await startNode('D', nats?.url ?? '', prefix);
    nodes.push(doomed);
    const queries = new QueryBus({ middleware: [retry({ maxRetries: 3, baseDelayMs: 10, maxDelayMs: 50 })] });
    // A killed node never answers what it had in hand: the client's timeout is what ends those requests.
    queries.registerHandler(Compute, remote(new RemoteClient(nc, { prefix, timeoutMs: 1_000 })));
    let killed = false;
    const outcomes = await drive(queries, 300, 16, (settled) => {
      if (settled >= 80 && !killed) {
        killed = true;
        doomed.child.kill('SIGKILL');
      }
    });
    expect(await doomed.exited).toBeNull();
    expect(outcomes).toHaveLength(300);
    // Every failure, if any, is a clear CqrsError; with three retries on live nodes there should be none.
    for (const o of outcomes) if (!o.ok) expect(isCqrsError(o.err), String(o.err)).toBe(true);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(countByNode(outcomes).D).toBeGreaterThan(0);
  });
});
