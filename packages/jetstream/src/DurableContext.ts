import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CompletionStore } from './completions/CompletionStore.js';
import type { ResolvedOptions } from './config/DurableOptions.js';
import type { Subjects } from './wire/subjects.js';

/** What every part of a `DurableMessaging` shares. @internal */
export interface DurableContext {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly options: ResolvedOptions;
  readonly subjects: Subjects;
  readonly completions: CompletionStore;
  /** The largest message a sender stores: `maxMessageBytes`, at most the server's max_payload less 16 KiB. */
  readonly maxMessageBytes: () => number;
}
