/**
 * A one-thread piscina on core's real thread entry (the built `handlerHost.cjs`) with the shared regions a
 * `WorkerPool` would hand it — a module table, cancel flags, metrics — built and owned by the test, so a test
 * can post tasks it forged and read what the thread wrote beside them. Runs against the built package and
 * fixtures (`node build.mjs --fast` first).
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type {
  BatchMessage,
  BatchOutcome,
  PoolWorkerData,
  TaskMessage,
  TaskOutcome,
} from '../src/pool/protocol.js';
import { BusyTime } from '../src/shared/BusyTime.js';
import { CancelFlags } from '../src/shared/CancelFlags.js';
import { MetricsRegion } from '../src/shared/MetricsRegion.js';
import { ModuleTable } from '../src/shared/ModuleTable.js';

const hostPath = fileURLToPath(new URL('../dist/handlerHost.cjs', import.meta.url));

export interface ForgedPool {
  readonly modules: ModuleTable;
  readonly cancel: CancelFlags;
  /** Posts `task` as it is, straight to the thread. */
  run(task: TaskMessage): Promise<TaskOutcome>;
  /** Posts `batch` (batchCodec's encodeBatch) as it is, straight to the thread. */
  runBatch(batch: BatchMessage): Promise<BatchOutcome>;
  destroy(): Promise<void>;
}

export function forgedPool(): ForgedPool {
  const modules = new ModuleTable(64 * 1024);
  const cancel = new CancelFlags(16);
  const metrics = new MetricsRegion({ threadStripes: 1 });
  const workerData: PoolWorkerData = {
    modules: modules.buffer,
    cancel: cancel.buffer,
    cancelTimes: cancel.timesBuffer,
    credits: new SharedArrayBuffer(16 * 4),
    metrics: metrics.buffer,
    busy: new BusyTime(1).buffer,
    maxDepth: 1000,
    guard: false,
  };
  const piscina = new Piscina({
    filename: hostPath,
    minThreads: 1,
    maxThreads: 1,
    atomics: 'async',
    workerData,
  });
  return {
    modules,
    cancel,
    run: async (task) => (await piscina.run(task)) as TaskOutcome,
    runBatch: async (batch) => (await piscina.run(batch)) as BatchOutcome,
    destroy: () => piscina.destroy(),
  };
}

/** A task for export `x` (handling `n`) of module `m`, unrecorded (`s: -1`), under cancel slot `slot`. */
export function forgedTask(
  cancel: CancelFlags,
  slot: number,
  fields: { m: unknown; x: string; n: string; i?: unknown },
): TaskMessage {
  return { i: {}, md: {}, c: slot, g: cancel.generation(slot), s: -1, d: 0, ...fields } as TaskMessage;
}
