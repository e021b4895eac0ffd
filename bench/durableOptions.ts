import type { DurableOptions } from '@cqrs-pool/jetstream';

/** The durable benchmark's topology: what its sender and its serving node agree on. */
export const benchDurableOptions: DurableOptions = { prefix: 'benchdurable', partitions: 16 };
