/**
 * Durable commands across processes that die: serving nodes in processes of their own, killed with SIGKILL
 * mid-handler, and the nats-server itself killed and restarted on its file store. What is stored is never
 * lost, completed commands are not run again, per-key order holds across nodes and restarts — and the one
 * window where a command runs twice (a crash between its effect and its completion record) shows as such.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DurableMessaging } from '@cqrs-pool/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Nodes, testOptions, until } from './durableHelpers.js';
import type { DurableNodeProcess } from './durableNodeProcess.js';
import { orderViolations, readEffects, startDurableNode } from './durableNodeProcess.js';
import { RecordEffect } from './fixtures/durableMessages.js';
import type { JetStreamServer } from './jetStreamServer.js';
import { startJetStreamServer } from './jetStreamServer.js';

// Its own server: these tests kill it.
const server: JetStreamServer | undefined = await startJetStreamServer().catch((err: unknown) => {
  console.warn(`\n!!! crash.test.ts: JETSTREAM TESTS SKIPPED — ${(err as Error).message}\n`);
  return undefined;
});

describe.skipIf(server === undefined)('durable commands when processes die', () => {
  const nodes = new Nodes(server?.url ?? '');
  const running: DurableNodeProcess[] = [];
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cqrs-effects-'));
  });
  afterEach(async () => {
    await Promise.all(running.map((n) => n.kill()));
    running.length = 0;
    await nodes.closeAll();
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A sender and `count` serving node processes of one prefix, each with its effects file. */
  async function cluster(count: number, env: Record<string, string> = {}) {
    const options = testOptions({ ackWaitMs: 1_000, maxDeliver: 5 });
    const prefix = options.prefix ?? '';
    const sender: DurableMessaging = await nodes.durable(options);
    const files = Array.from({ length: count }, (_, i) => join(dir, `${prefix}-${i}.jsonl`));
    const start = (i: number) =>
      startDurableNode(`node-${i}`, {
        NATS_URL: server?.url ?? '',
        CQRS_PREFIX: prefix,
        EFFECTS_FILE: files[i] ?? '',
        PARTITIONS: '4',
        ACK_WAIT_MS: '1000',
        ...env,
      }).then((n) => {
        running.push(n);
        return n;
      });
    const started = await Promise.all(Array.from({ length: count }, (_, i) => start(i)));
    return { sender, files, nodes: started, start };
  }

  it('a node killed mid-handler, before its effect: another node runs the command, once', async () => {
    const { sender, files, nodes: started } = await cluster(2);
    await sender.send(RecordEffect, { key: 'k', seq: 1, hold: 'before-effect' }, { messageId: 'held-1' });
    const holder = await Promise.any(started.map((n) => n.printed('holding held-1').then(() => n)));
    await holder.kill();
    expect(await sender.result('held-1', { timeoutMs: 15_000 })).not.toBe(holder.id);
    const effects = readEffects(files).filter((e) => e.messageId === 'held-1');
    expect(effects).toHaveLength(1);
    expect(effects[0]?.deliveryCount).toBe(2);
  }, 60_000);

  it('a node killed after its effect, before the completion record: the redelivery runs it again (the at-least-once window), with deliveryCount 2', async () => {
    const { sender, files, nodes: started } = await cluster(2);
    await sender.send(RecordEffect, { key: 'k', seq: 1, hold: 'after-effect' }, { messageId: 'window-1' });
    const holder = await Promise.any(started.map((n) => n.printed('effect window-1').then(() => n)));
    await holder.kill();
    await sender.result('window-1', { timeoutMs: 15_000 });
    const effects = readEffects(files).filter((e) => e.messageId === 'window-1');
    // What the README documents: the effect happened twice; the second run was told it is a redelivery,
    // which is what lets a handler that keeps its effect and messageId together skip it.
    expect(effects.map((e) => e.deliveryCount).sort()).toEqual([1, 2]);
  }, 60_000);

  it('a command that kills its node on every delivery is dead-lettered (no-outcome) after maxDeliver deliveries', async () => {
    const { sender, start } = await cluster(1, { MAX_DELIVER: '2' });
    const restarts: Promise<unknown>[] = [];
    // A supervisor: a node that dies is started again, as a process manager would.
    const supervise = (n: DurableNodeProcess, i: number): void => {
      void n.exited.then(() => {
        if (stopped) return;
        restarts.push(start(i).then((next) => supervise(next, i)));
      });
    };
    let stopped = false;
    supervise(running[0] as DurableNodeProcess, 0);
    await sender.send(RecordEffect, { key: 'p', seq: 1, crash: true }, { messageId: 'poison' });
    await until(
      async () => (await sender.deadLetters.count()) === 1,
      'the poison command to be dead-lettered',
      40_000,
      100,
    );
    stopped = true;
    await Promise.allSettled(restarts);
    const [letter] = await sender.deadLetters.list();
    expect(letter).toMatchObject({ messageId: 'poison', reason: 'no-outcome', deliveries: 3 });
    expect(letter?.error.code).toBe('TIMEOUT');
  }, 60_000);

  it('keeps per-key order across two nodes, and loses nothing when the nats-server is killed and restarted', async () => {
    const { sender, files } = await cluster(2);
    const keys = 8;
    const perKey = 40;
    const sends: Promise<unknown>[] = [];
    // Each key's commands are stored in order (each awaits the previous PubAck); keys go in parallel.
    for (let k = 0; k < keys; k++) {
      sends.push(
        (async () => {
          for (let seq = 0; seq < perKey; seq++) {
            await sender.send(
              RecordEffect,
              { key: `key-${k}`, seq, spinMs: seq % 7 === 0 ? 2 : 0 },
              { messageId: `k${k}-${seq}`, orderingKey: `key-${k}`, timeoutMs: 60_000 },
            );
          }
        })(),
      );
    }
    await until(() => readEffects(files).length >= 60, 'some commands to run');
    await server?.restart();
    await Promise.all(sends);
    const total = keys * perKey;
    await until(
      () => new Set(readEffects(files).map((e) => e.messageId)).size === total,
      'every command',
      60_000,
      100,
    );
    const effects = readEffects(files);
    expect(orderViolations(effects)).toEqual([]);
    // Both nodes took part.
    expect(new Set(effects.map((e) => e.node)).size).toBe(2);
    // A command may run twice only as a later attempt told so (deliveryCount 2+: its first run's node
    // could not store the outcome before its claim went stale) — never as two first attempts.
    const firstRuns = new Map<string, number>();
    for (const e of effects)
      if (e.deliveryCount === 1) firstRuns.set(e.messageId, (firstRuns.get(e.messageId) ?? 0) + 1);
    expect([...firstRuns.values()].filter((n) => n > 1)).toEqual([]);
  }, 90_000);
});
