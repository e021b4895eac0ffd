import type { Definition, HandlerFn } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import { markForwarded } from '@cqrs-pool/core/internal';
import type { NatsConnection } from '@nats-io/transport-node';
import { RemoteClient } from './RemoteClient.js';
import type { RemoteClientOptions } from './RemoteClientOptions.js';
import { subjectFor } from './subjects.js';

/** Options of {@link remote}: a subject, and (when given a connection) those of the client it makes. */
export interface RemoteOptions extends RemoteClientOptions {
  /**
   * The subject to send to. Default `<prefix>.cmd.<Name>` / `<prefix>.qry.<Name>` from the name and kind of
   * the message the handler is registered for — what `serve()` listens on.
   */
  subject?: string;
}

/**
 * A handler that runs the call on whichever node serves it over NATS (see `serve`), for
 * `bus.registerHandler(Def, remote(nc))`. The call passes the calling bus's middleware first (validation,
 * timeout, retry, metrics: it counts as an inline handler's call), then goes out — alone, or in a batch
 * with the calls to the same subject made at the same time (see `RemoteClientOptions.batching`); the
 * serving node runs it through its own bus and middleware. Metadata and W3C trace context travel with it
 * (in NATS headers, or in the batch's entry for it). The caller's abort or a `timeout()` abandons it at
 * once: the caller is released by its bus, and a call not yet sent is not sent.
 *
 * Given a connection, `remote` makes a {@link RemoteClient} of its own (its own in-flight bound); given a
 * client, it shares that client (and its bound) with every other handler made from it — then only
 * `options.subject` applies.
 *
 * @example
 * ```ts
 * const nc = await connect({ servers: process.env.NATS_URL });
 * queries.registerHandler(GetReport, remote(nc), { middleware: [timeout(2_000)] });
 * ```
 * @throws CqrsError `INVALID_REGISTRATION` (at once) for a bad option, or client options given with a client.
 * @returns a handler whose calls reject with the serving bus's error rebuilt (its `code` and message:
 * `VALIDATION`, `HANDLER_FAILED`, …), or `UNAVAILABLE`, `OVERLOADED`, `TIMEOUT`, `ABORTED`, `NOT_CLONEABLE`,
 * `CLOSED` (see {@link RemoteClient.request}).
 */
export function remote(
  target: NatsConnection | RemoteClient,
  options: RemoteOptions = {},
): HandlerFn<Definition> {
  const { subject, ...clientOptions } = options;
  if (target instanceof RemoteClient && Object.values(clientOptions).some((v) => v !== undefined)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      'remote: given a RemoteClient, only options.subject applies; set the other options on the client',
    );
  }
  const client = target instanceof RemoteClient ? target : new RemoteClient(target, clientOptions);
  if (subject !== undefined && (typeof subject !== 'string' || !/^[^\s*>]+$/.test(subject))) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `remote: options.subject must be a NATS subject without spaces or wildcards, got ${JSON.stringify(subject)}`,
    );
  }
  // The subject per message, worked out once: one handler may be registered for several definitions.
  const subjects = new Map<string, string>();
  return (input, ctx) => {
    let to = subject ?? subjects.get(`${ctx.kind}:${ctx.name}`);
    if (to === undefined) {
      try {
        to = subjectFor(client.prefix, ctx.kind, ctx.name);
      } catch (err) {
        return Promise.reject(markForwarded(err as CqrsError));
      }
      subjects.set(`${ctx.kind}:${ctx.name}`, to);
    }
    return client.forward(to, ctx.name, input, ctx.metadata, ctx);
  };
}
