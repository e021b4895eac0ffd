/**
 * Graceful shutdown with thousands in flight: a child process (fixtures/reliabilityShutdownScenario.ts)
 * makes 3000 calls on both buses — most queued for the pool's two threads, some inline, one in 15 aborted by
 * its caller halfway through the drain — closes both buses then the pool, and makes 100 calls after close
 * began.
 * Every call settles (completed, ABORTED, or CLOSED with a reason that says so), none is lost, none runs
 * twice (each handler counts its executions per call id in shared memory), and the process then exits by
 * itself with code 0. Runs against the built package and fixtures (`node build.mjs --fast` first).
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../runScenario.js';

interface ShutdownReport {
  calls: number;
  settled: number;
  byOutcome: Record<string, number>;
  reasons: string[];
  queuedAtClose: number;
  ranTwice: number;
  okNotRun: number;
  closedButRan: number;
  executions: number;
  metrics: { commands: number; queries: number; failures: number };
  closeMs: number;
  poolThreads: number;
}

describe('graceful shutdown', () => {
  it('with 3000 calls in flight: all settle, none lost or run twice, and the process exits 0 by itself', async () => {
    const started = performance.now();
    const { code, stdout, stderr } = await runScenario('reliabilityShutdownScenario');
    const exitMs = performance.now() - started;
    expect(stderr).toBe('');
    // Exit code 0, by itself: killed at the hang bound, it would be null.
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as ShutdownReport;
    console.log(`shutdown: ${JSON.stringify({ ...report, exitMs: Math.round(exitMs) })}`);
    expect(report.calls).toBe(3100);
    expect(report.settled).toBe(3100);
    // Only these outcomes, in the mix the scenario sets up: most complete, the late ones are refused.
    for (const outcome of Object.keys(report.byOutcome))
      expect(['ok', 'ABORTED', 'CLOSED']).toContain(outcome);
    expect(report.byOutcome.CLOSED).toBe(100);
    // Only the 200 calls with a signal can be aborted: some completed before their caller gave up, some not.
    expect(report.byOutcome.ABORTED ?? 0).toBeGreaterThan(0);
    expect(report.byOutcome.ABORTED ?? 0).toBeLessThan(200);
    expect((report.byOutcome.ok ?? 0) + (report.byOutcome.ABORTED ?? 0)).toBe(3000);
    expect(report.queuedAtClose).toBeGreaterThan(1000);
    for (const reason of report.reasons) {
      expect(reason).toMatch(/^(CLOSED: .*closed|ABORTED: aborted by the caller)$/);
    }
    expect(report.ranTwice).toBe(0);
    expect(report.okNotRun).toBe(0);
    expect(report.closedButRan).toBe(0);
    // Each accepted call counted once; the CLOSED refusals are not counted (README: Metrics).
    expect(report.metrics.commands + report.metrics.queries).toBe(3000);
    expect(report.metrics.failures).toBe(report.byOutcome.ABORTED ?? 0);
    expect(report.executions).toBeGreaterThanOrEqual(report.byOutcome.ok ?? 0);
    expect(report.executions).toBeLessThanOrEqual(3000);
    expect(report.poolThreads).toBe(0);
  }, 90_000);
});
