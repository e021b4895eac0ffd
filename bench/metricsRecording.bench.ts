/**
 * What metrics cost a call on the main thread: one `record()` (a handful of `Atomics.add`s on stripe 0)
 * against the same loop without it. Target: ≤ ~50 ns added per call. And what the caller-side timings add:
 * a pooled call's duration and queue wait (main thread), a pool thread's busy interval (per message).
 *
 *   node build.mjs --fast && node dist/bench/metricsRecording.bench.js [--json]
 */
import { bench, do_not_optimize, group } from 'mitata';
import { BusyClock, BusyTime } from '../packages/core/src/shared/BusyTime.js';
import { MAIN_STRIPE } from '../packages/core/src/shared/layout.js';
import { MetricsRegion } from '../packages/core/src/shared/MetricsRegion.js';
import { report } from './report.js';

// Latencies spread over four decades (µs), so the histogram buckets touched vary as in real traffic.
const LATENCIES = Float64Array.from({ length: 1024 }, (_, i) => 10 ** (1 + ((i * 37) % 1024) / 256) + i / 7);

group('one settled call on the main thread', () => {
  bench('baseline: the call loop without metrics', function* () {
    let i = 0;
    yield () => {
      i = (i + 1) & 1023;
      do_not_optimize(LATENCIES[i]);
      do_not_optimize(i % 16 === 0);
    };
  }).baseline(true);

  bench('record(slot, stripe 0, latency, failed)', function* () {
    const region = new MetricsRegion({ threadStripes: 4 });
    const slot = region.allocate('CreateUser');
    let i = 0;
    yield () => {
      i = (i + 1) & 1023;
      region.record(slot, MAIN_STRIPE, LATENCIES[i] ?? 0, i % 16 === 0);
    };
  });

  bench('in-flight +1/−1 and record (the whole per-call cost)', function* () {
    const region = new MetricsRegion({ threadStripes: 4 });
    const slot = region.allocate('CreateUser');
    let i = 0;
    yield () => {
      i = (i + 1) & 1023;
      region.incrementInFlight(slot);
      region.record(slot, MAIN_STRIPE, LATENCIES[i] ?? 0, i % 16 === 0);
      region.decrementInFlight(slot);
    };
  });

  bench('record across 64 handlers (slot varies)', function* () {
    const region = new MetricsRegion({ threadStripes: 4 });
    for (let h = 0; h < 64; h++) region.allocate(`Handler${h}`);
    let i = 0;
    yield () => {
      i = (i + 1) & 1023;
      region.record(i & 63, MAIN_STRIPE, LATENCIES[i] ?? 0, i % 16 === 0);
    };
  });
});

group('timings of a pooled call', () => {
  bench('baseline: one performance.now()', () => do_not_optimize(performance.now())).baseline(true);

  bench('main: call duration and queue wait (2 clock reads, 2 records)', function* () {
    const region = new MetricsRegion({ threadStripes: 4 });
    const slot = region.allocate('CreateUser');
    let i = 0;
    yield () => {
      i = (i + 1) & 1023;
      const calledAt = performance.now();
      region.recordQueueWait(slot, LATENCIES[i] ?? 0);
      region.recordCallDuration(slot, (performance.now() - calledAt) * 1000 + (LATENCIES[i] ?? 0));
    };
  });

  bench('thread: busy interval, enter + leave (per message)', function* () {
    const busy = new BusyTime(4);
    const clock = new BusyClock(busy.buffer, 1);
    yield () => {
      clock.enter();
      clock.leave();
    };
  });
});

group('reading', () => {
  bench('snapshot() of 16 handlers, 5 stripes', function* () {
    const region = new MetricsRegion({ threadStripes: 4 });
    for (let h = 0; h < 16; h++) {
      const slot = region.allocate(`Handler${h}`);
      for (let stripe = 0; stripe < region.stripes; stripe++) region.record(slot, stripe, 100 + h, false);
    }
    yield () => do_not_optimize(region.snapshot());
  });
});

await report('metricsRecording', undefined, [
  'Metrics recording alone',
  'Timings of a pooled call',
  'Metrics snapshot',
]);
