import type { Metadata } from '@cqrs-pool/core';
import type { Lane } from './RequestGatherer.js';

/**
 * One call of a {@link RemoteClient}, from `request` until it settles. It waits for its reply either alone
 * (`token` set: its own reply subject) or in a batch (`batch` set, at `index`), or not yet sent (held in
 * its lane).
 * @internal
 */
export interface RemoteCall {
  readonly name: string;
  readonly subject: string;
  /** The input, encoded. */
  readonly body: Uint8Array;
  readonly metadata: Metadata;
  /** The metadata as JSON, `undefined` when there is none. */
  readonly metadataJson: string | undefined;
  /** `performance.now()` past which the caller no longer waits (`timeoutMs` after the call). */
  readonly deadline: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  /** A caller's own signal (`request`): listened to. */
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The calling handler's context (`remote()`): polled, see `RemoteClient.forward`. */
  readonly ctx: Cancellable | undefined;
  /** Its lane when batching is on. */
  readonly lane: Lane | undefined;
  token: string | undefined;
  batch: SentBatch | undefined;
  index: number;
  settled: boolean;
}

/** What `remote()` hands over of its handler context: whether the call was cancelled. @internal */
export interface Cancellable {
  isCancelled(): boolean;
}

/** A batch request sent and not yet settled in full. @internal */
export interface SentBatch {
  readonly token: string;
  readonly lane: Lane;
  readonly calls: readonly RemoteCall[];
  /** Its calls not settled yet; at 0 the batch is done. */
  open: number;
}
