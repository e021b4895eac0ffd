/**
 * The opt-in series: the main thread's event-loop delay and prom-client's default process metrics, their
 * removal with the rest, and the options' checks.
 */
import { CommandBus, defineCommand, isCqrsError } from '@cqrs-pool/core';
import { EVENT_LOOP_DELAY_QUANTILES, registerCqrsMetrics } from '@cqrs-pool/prometheus';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseExposition } from './scrape.js';

const Ping = defineCommand('Ping', { input: z.object({}) });

function bus(): CommandBus {
  const commands = new CommandBus();
  commands.registerHandler(Ping, () => undefined);
  return commands;
}

/** Keeps the main thread busy for `ms`: no timer runs meanwhile. */
function blockMainThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Blocking on purpose.
  }
}

describe('registerCqrsMetrics runtime options', () => {
  it('exports the event-loop delay as a summary whose quantiles cover the time since the last scrape', async () => {
    const registry = new Registry();
    const remove = registerCqrsMetrics({ registry, buses: [bus()], eventLoopDelay: { resolutionMs: 1 } });
    // Let the monitor take a sample or two, then hold the loop for 30 ms: one sample is at least that late.
    await new Promise((resolve) => setTimeout(resolve, 5));
    blockMainThread(30);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const m = parseExposition(await registry.metrics());
    expect(m.types.get('cqrs_event_loop_delay_seconds')).toBe('summary');
    const quantiles = m.all('cqrs_event_loop_delay_seconds').map((s) => Number(s.labels.quantile));
    expect(quantiles).toEqual([...EVENT_LOOP_DELAY_QUANTILES]);
    // The 30 ms block, less the 1 ms the timer was due after anyway.
    expect(m.value('cqrs_event_loop_delay_seconds', { quantile: '1' })).toBeGreaterThanOrEqual(0.029);
    expect(m.value('cqrs_event_loop_delay_seconds_count')).toBeGreaterThan(0);
    expect(m.value('cqrs_event_loop_delay_seconds_sum')).toBeGreaterThanOrEqual(0.029);
    const count = m.value('cqrs_event_loop_delay_seconds_count');
    await new Promise((resolve) => setTimeout(resolve, 5));
    // _count and _sum add up across scrapes.
    const next = parseExposition(await registry.metrics());
    expect(next.value('cqrs_event_loop_delay_seconds_count')).toBeGreaterThan(count);
    expect(next.value('cqrs_event_loop_delay_seconds_sum')).toBeGreaterThanOrEqual(0.029);
    remove();
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });

  it("adds prom-client's default process metrics, with a prefix if asked, and removes them with the rest", async () => {
    const registry = new Registry();
    const remove = registerCqrsMetrics({ registry, buses: [bus()], processMetrics: { prefix: 'svc_' } });
    const m = parseExposition(await registry.metrics());
    expect(m.types.get('svc_process_cpu_seconds_total')).toBe('counter');
    expect(m.types.get('svc_nodejs_heap_size_used_bytes')).toBe('gauge');
    expect(m.types.get('cqrs_executions_total')).toBe('counter');
    remove();
    expect(registry.getMetricsAsArray()).toHaveLength(0);

    const plain = new Registry();
    const removePlain = registerCqrsMetrics({ registry: plain, buses: [bus()], processMetrics: true });
    expect(parseExposition(await plain.metrics()).types.get('process_cpu_seconds_total')).toBe('counter');
    removePlain();
  });

  it('refuses bad runtime options, naming them, and leaves the registry as it was', () => {
    const registry = new Registry();
    const refusal = (options: object) => {
      try {
        registerCqrsMetrics({ registry, buses: [bus()], ...options });
      } catch (err) {
        return isCqrsError(err, 'INVALID_REGISTRATION') ? err.message : err;
      }
      return 'accepted';
    };
    expect(refusal({ eventLoopDelay: { resolutionMs: 0 } })).toMatch(/options\.eventLoopDelay/);
    expect(refusal({ eventLoopDelay: 'yes' })).toMatch(/options\.eventLoopDelay/);
    expect(refusal({ processMetrics: { prefix: 'bad-' } })).toMatch(/options\.processMetrics\.prefix/);
    expect(refusal({ processMetrics: 1 })).toMatch(/options\.processMetrics/);
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });
});
