import type { StreamHandlerFn, StreamQueryDefinition } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { RemoteClient } from './RemoteClient.js';
import type { RemoteClientOptions } from './RemoteClientOptions.js';
import { StreamSession } from './StreamSession.js';
import { MAX_WINDOW } from './streamWire.js';
import { subjectFor } from './subjects.js';

/** Options of {@link remoteStream}: those of {@link remote}, and the stream's window. */
export interface RemoteStreamOptions extends RemoteClientOptions {
  /** The subject to send to. Default `<prefix>.qry.<Name>`, what `serve()` listens on. */
  subject?: string;
  /**
   * Items the serving node may send beyond what this node has read (1 … 1,048,576): its credits. Default 1024.
   * The items in transit are not part of the calling stream's `highWaterMark`: a remote producer can be up to
   * both ahead of the consumer.
   */
  window?: number;
}

/**
 * A handler for a streaming query that runs it on whichever node serves it over NATS (see `serve`), for
 * `queries.registerHandler(ExportRows, remoteStream(nc))`. The stream passes the calling bus's middleware
 * first, then goes out as one request; the serving node streams it through its own bus, sending the items
 * back in messages as they come, never more than `window` items ahead of what this node has read (credits
 * sent back as the consumer reads). `break` or the signal stop it there too. While a stream is open each
 * side says it is alive when it has said nothing for a third of `timeoutMs`; one silent for longer than that
 * has gone (the caller gets `TIMEOUT`; the server stops the stream). The wire: docs/wire-protocol.md, "Streams".
 *
 * @example
 * ```ts
 * queries.registerHandler(ExportRows, remoteStream(nc), { middleware: [timeout(60_000)] });
 * for await (const row of queries.stream(ExportRows, { from: 0 })) { … }
 * ```
 * @throws CqrsError `INVALID_REGISTRATION` (at once) for a bad option, or client options given with a client.
 * @returns a stream handler whose streams fail (after the items before) with the serving bus's error rebuilt
 * (`HANDLER_FAILED`, `VALIDATION`, `NOT_CLONEABLE`, …), or `UNAVAILABLE` (nobody serves it, the connection
 * is gone, a message was lost), `TIMEOUT` (the server went silent), `NOT_CLONEABLE` (the codec refused),
 * `OVERLOADED` (an open stream holds a place under the client's `maxInFlight`), `CLOSED` (the client closed).
 */
export function remoteStream(
  target: NatsConnection | RemoteClient,
  options: RemoteStreamOptions = {},
): StreamHandlerFn<StreamQueryDefinition> {
  const { subject, window = 1024, ...clientOptions } = options;
  if (target instanceof RemoteClient && Object.values(clientOptions).some((v) => v !== undefined)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'remoteStream: given a RemoteClient, only options.subject and options.window apply; set the other options on the client',
    );
  }
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `remoteStream: options.window must be an integer from 1 to ${MAX_WINDOW}, got ${String(window)}`,
    );
  }
  if (subject !== undefined && (typeof subject !== 'string' || !/^[^\s*>]+$/.test(subject))) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `remoteStream: options.subject must be a NATS subject without spaces or wildcards, got ${JSON.stringify(subject)}`,
    );
  }
  const client = target instanceof RemoteClient ? target : new RemoteClient(target, clientOptions);
  const subjects = new Map<string, string>();
  return (input, ctx) => {
    let to = subject ?? subjects.get(ctx.name);
    if (to === undefined) {
      to = subjectFor(client.prefix, 'query', ctx.name);
      subjects.set(ctx.name, to);
    }
    return new StreamSession(client, to, ctx.name, input, ctx.metadata, ctx.signal, window);
  };
}
