import type { Definition } from '@cqrs-pool/core';
import type { Codec } from './Codec.js';
import type { MetadataFilter, MetadataPolicy } from './metadataPolicy.js';
import type { ResolvedService, ServiceOptions } from './microService.js';

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Subject prefix: handlers are served on `<prefix>.cmd.<Name>` / `<prefix>.qry.<Name>`. Default `'cqrs'`. */
  prefix?: string;
  /** The NATS queue group: each request goes to one member. Default `'cqrs-pool'`. */
  queue?: string;
  /** Serve only these handlers (names or definitions). Default: every handler registered on the bus now. */
  handlers?: readonly (string | Definition)[];
  /** Decodes inputs and encodes results and errors. Default `taggedJson`. Must match the callers'. */
  codec?: Codec;
  /**
   * Calls this node runs at once; a request beyond is answered at once with `OVERLOADED` (the caller's
   * `retry()` can try again, likely on another node). Default 1024. The bus's pool bounds its own queue too.
   */
  maxInFlight?: number;
  /**
   * Most calls one batch request may carry (see `RemoteClientOptions.batching`); a bigger batch is refused
   * whole with `VALIDATION`, unread past its descriptor. Default 1024. Each call of a batch still counts
   * against `maxInFlight` (those beyond it are answered `OVERLOADED`), and its input is decoded within the
   * codec's limits on its own; the whole batch is bounded by the NATS server's `max_payload`.
   */
  maxBatchSize?: number;
  /**
   * Which of the metadata a caller sent reaches the handlers: `{ allow: [...] }`, `{ drop: [...] }` or a
   * function (see {@link MetadataPolicy}). Default: all of it. Over NATS, metadata is whatever the caller
   * wrote — a `role` or `user` in it is a claim, not a fact: authorization rests on NATS accounts and subject
   * permissions, and this option keeps claims you do not trust from reaching middleware that would believe them.
   */
  metadata?: MetadataPolicy;
  /**
   * Whether error replies carry stack traces (the error's, its causes' and those in its fields). Default
   * `false`: stacks show the server's file paths and code to every caller. `true` for trusted callers only.
   */
  stacks?: boolean;
  /**
   * Registers the node as a NATS micro service, so that `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (and `nats
   * micro ls|info|stats`) list it with its endpoints — one per handler — and their figures. Default: on, as
   * `'cqrs-pool'` version `'0.0.0'`; `false` to stay unlisted. Needs the right to subscribe to `$SRV.>`; when
   * registration fails the node serves on, unlisted (see `NatsServer.registrationError`).
   */
  service?: ServiceOptions | false;
}

/** A node registered as a NATS micro service: what `$SRV.PING` answers for it. */
export interface RegisteredService {
  readonly name: string;
  readonly id: string;
  readonly version: string;
}

/** @internal What {@link serve} checked and hands to the server. */
export interface ServerConfig {
  readonly codec: Codec;
  readonly maxInFlight: number;
  readonly maxBatchSize: number;
  readonly metadataFilter: MetadataFilter | undefined;
  readonly stacks: boolean;
  readonly names: readonly string[];
  readonly prefix: string;
  readonly queue: string;
  readonly service: ResolvedService | undefined;
}

/** What a {@link NatsServer} has done since it started, in calls (each call of a batch counts as one). */
export interface NatsServerStats {
  /** Calls received. */
  received: number;
  /** Answered with a result. */
  succeeded: number;
  /** Answered with an error (the bus's, or a refusal here). */
  failed: number;
  /**
   * Unreadable (bad body, bad headers, beyond the codec's limits) or without a reply subject; answered with
   * `VALIDATION` when there is a reply subject. Counted in `failed` too when answered. A batch refused whole
   * counts its calls when its descriptor could be read (over `maxBatchSize`), else as one.
   */
  malformed: number;
  /** Calls running now. */
  inFlight: number;
}
