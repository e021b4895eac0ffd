import type { CommandBus, QueryBus } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { metadataFilterOf } from './metadataPolicy.js';
import { resolveService } from './microService.js';
import { NatsServer } from './NatsServer.js';
import type { ServeOptions } from './ServeOptions.js';
import { checkPrefix, DEFAULT_PREFIX } from './subjects.js';
import { taggedJson } from './taggedJson.js';

/**
 * Serves a bus's handlers on NATS: one queue-group subscription per handler on `<prefix>.cmd.<Name>` (a
 * `CommandBus`) or `<prefix>.qry.<Name>` (a `QueryBus`). Run `serve` on any number of nodes: each request
 * goes to one of them and runs through that node's bus — its middleware, its worker pool, its metrics.
 * Call it once per bus. Handlers registered after `serve` are not served.
 *
 * A request that cannot be read (bad body or headers, beyond the codec's limits) is answered with
 * `VALIDATION`; one beyond `maxInFlight` with `OVERLOADED`; a batch request is answered call by call (a
malformed or oversized batch envelope as a whole, with `VALIDATION`); one whose metadata `options.metadata` refuses with
 * that refusal; a failed call with the bus's error, as plain data, without stack traces unless
 * `options.stacks`. Nothing a caller sends can crash the node.
 *
 * @example
 * ```ts
 * const server = serve(nc, commands);               // every registered command
 * process.on('SIGTERM', () => void server.stop());  // finish what is in flight, take nothing new
 * ```
 * @throws CqrsError `INVALID_REGISTRATION` (at once) for a bad option, or a `handlers` entry the bus has no
 * handler for.
 */
export function serve(
  connection: NatsConnection,
  bus: CommandBus | QueryBus,
  options: ServeOptions = {},
): NatsServer {
  if (typeof connection !== 'object' || connection === null || typeof connection.subscribe !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', 'serve: connection must be a NatsConnection');
  }
  const registered = registeredNames(bus);
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX, 'serve: options.prefix');
  const queue = options.queue ?? 'cqrs-pool';
  if (typeof queue !== 'string' || !/^[^\s.*>]+$/.test(queue)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `serve: options.queue must be one NATS subject token, got ${JSON.stringify(queue)}`,
    );
  }
  const maxInFlight = options.maxInFlight ?? 1024;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `serve: options.maxInFlight must be an integer >= 1, got ${String(maxInFlight)}`,
    );
  }
  const maxBatchSize = options.maxBatchSize ?? 1024;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `serve: options.maxBatchSize must be an integer >= 1, got ${String(maxBatchSize)}`,
    );
  }
  const codec = options.codec ?? taggedJson;
  if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new CqrsError('INVALID_REGISTRATION', 'serve: options.codec must have encode and decode');
  }
  let names = registered;
  if (options.handlers !== undefined) {
    names = options.handlers.map((h) => (typeof h === 'string' ? h : String(h?.name)));
    const missing = names.filter((n) => !registered.includes(n));
    if (missing.length > 0) {
      throw new CqrsError(
        'INVALID_REGISTRATION',
        `serve: no ${bus.kind} handler registered for ${missing.join(', ')}`,
      );
    }
  }
  const metadataFilter = metadataFilterOf(options.metadata, 'serve: options.metadata');
  const stacks = options.stacks ?? false;
  if (typeof stacks !== 'boolean') {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `serve: options.stacks must be a boolean, got ${String(stacks)}`,
    );
  }
  const service = resolveService(options.service, 'serve: options.service');
  return new NatsServer(connection, bus, {
    service,
    codec,
    maxInFlight,
    maxBatchSize,
    metadataFilter,
    stacks,
    names: [...new Set(names)],
    prefix,
    queue,
  });
}

function registeredNames(bus: CommandBus | QueryBus): string[] {
  if (typeof bus !== 'object' || bus === null || (bus.kind !== 'command' && bus.kind !== 'query')) {
    throw new CqrsError('INVALID_REGISTRATION', 'serve: bus must be a CommandBus or a QueryBus');
  }
  return bus.kind === 'command'
    ? (bus as CommandBus).getRegisteredCommands()
    : (bus as QueryBus).getRegisteredQueries();
}
