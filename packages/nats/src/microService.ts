import type { MessageKind } from '@cqrs-pool/core';
import { CqrsError } from '@cqrs-pool/core';
import type { Service } from '@nats-io/services';
import { Svcm } from '@nats-io/services';
import type { Msg, NatsConnection } from '@nats-io/transport-node';

/**
 * The `service` option of `serve`: how the node presents itself as a NATS micro service (the `$SRV.PING`,
 * `$SRV.INFO` and `$SRV.STATS` discovery protocol, as `nats micro ls` shows it).
 */
export interface ServiceOptions {
  /** The service name, in `$SRV.<VERB>.<name>`: letters, digits, `-` and `_`. Default `'cqrs-pool'`. */
  readonly name?: string;
  /** The version of your service, semver (`1.4.0`). Default `'0.0.0'`. */
  readonly version?: string;
  /** One line about it. Default: `cqrs-pool <command|query> handlers`. */
  readonly description?: string;
  /** Your own string pairs, added to the service's metadata (`cqrs.*` keys are the node's). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** @internal The checked option, with its defaults. */
export interface ResolvedService {
  readonly name: string;
  readonly version: string;
  readonly description: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
}

const serviceName = /^[-\w]+$/;
// What the services library accepts (it parses versions as semver and throws otherwise).
const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/**
 * Checks the `service` option: `undefined` (the defaults), `false` (not registered) or {@link ServiceOptions}.
 * @throws CqrsError `INVALID_REGISTRATION` naming what is wrong.
 * @internal
 */
export function resolveService(option: unknown, where: string): ResolvedService | undefined {
  if (option === false) return undefined;
  if (option !== undefined && (typeof option !== 'object' || option === null)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where} must be false or { name?, version?, description?, metadata? }`,
    );
  }
  const given = (option ?? {}) as ServiceOptions;
  const name = given.name ?? 'cqrs-pool';
  if (typeof name !== 'string' || !serviceName.test(name)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where}.name must be letters, digits, '-' or '_', got ${JSON.stringify(name)}`,
    );
  }
  const version = given.version ?? '0.0.0';
  if (typeof version !== 'string' || !semver.test(version)) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${where}.version must be semver (1.4.0), got ${JSON.stringify(version)}`,
    );
  }
  if (given.description !== undefined && typeof given.description !== 'string') {
    throw new CqrsError('INVALID_REGISTRATION', `${where}.description must be a string`);
  }
  const metadata = given.metadata ?? {};
  if (
    typeof metadata !== 'object' ||
    metadata === null ||
    Object.values(metadata).some((v) => typeof v !== 'string')
  ) {
    throw new CqrsError('INVALID_REGISTRATION', `${where}.metadata must be an object of strings`);
  }
  return { name, version, description: given.description, metadata: { ...metadata } };
}

/**
 * An endpoint name the services library accepts (letters, digits, `-`, `_`) for a message name, which may
 * hold other characters a subject token allows (`:`, `$`, …); unique among `taken`.
 * @internal
 */
export function endpointName(messageName: string, taken: Set<string>): string {
  const base = messageName.replace(/[^-\w]/g, '_');
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
  taken.add(name);
  return name;
}

/** @internal What {@link startMicroService} registers. */
export interface MicroServiceSpec {
  readonly options: ResolvedService;
  readonly kind: MessageKind;
  readonly prefix: string;
  readonly queue: string;
  readonly codecId: string | undefined;
  readonly endpoints: readonly {
    readonly name: string;
    readonly subject: string;
    readonly handle: (err: Error | null, msg: Msg) => void;
  }[];
  /** An endpoint's `data` in `$SRV.STATS`, by its subject. */
  readonly stats: (subject: string) => unknown;
}

/**
 * Registers a NATS micro service whose endpoints — subscribed by the services library in the queue group —
 * hand each request to `handle`. Resolves once NATS has accepted every subscription.
 * @throws Error when NATS refuses one (permissions) or the service stops at once; it is then stopped.
 * @internal
 */
export async function startMicroService(
  connection: NatsConnection,
  spec: MicroServiceSpec,
): Promise<Service> {
  // NATS refuses a subscription its permissions forbid with an error on the connection; the services
  // library does not see those of its $SRV subscriptions (it would answer nothing, and seem registered).
  const statuses = connection.status();
  const refused: string[] = [];
  void (async () => {
    for await (const status of statuses) {
      if (status.type !== 'error') continue;
      const err = status.error as Error & { operation?: unknown; subject?: unknown };
      if (
        err.operation === 'subscription' &&
        typeof err.subject === 'string' &&
        err.subject.startsWith('$SRV.')
      ) {
        refused.push(err.message);
      }
    }
  })().catch(() => undefined);
  let service: Service | undefined;
  try {
    // The library is built against its own copy of nats-core's types; the connection is the same protocol.
    service = await new Svcm(connection as unknown as ConstructorParameters<typeof Svcm>[0]).add({
      name: spec.options.name,
      version: spec.options.version,
      description: spec.options.description ?? `cqrs-pool ${spec.kind} handlers`,
      metadata: {
        ...spec.options.metadata,
        'cqrs.kind': spec.kind,
        'cqrs.prefix': spec.prefix,
        'cqrs.queue': spec.queue,
        ...(spec.codecId === undefined ? {} : { 'cqrs.codec': spec.codecId }),
      },
      queue: spec.queue,
      statsHandler: (endpoint) => Promise.resolve(spec.stats(endpoint.subject)),
    });
    const taken = new Set<string>();
    for (const endpoint of spec.endpoints) {
      service.addEndpoint(endpointName(endpoint.name, taken), {
        subject: endpoint.subject,
        queue: spec.queue,
        metadata: { 'cqrs.message': endpoint.name, 'cqrs.kind': spec.kind },
        handler: (err, msg) => endpoint.handle(err, msg as unknown as Msg),
      });
    }
    // NATS sends the refusal of a subscription before the PONG of this flush; the status iterator hands it
    // over on a later turn of the event loop.
    await connection.flush();
    await new Promise((resolve) => setImmediate(resolve));
    if (refused.length > 0) throw new Error(`not listed as a micro service: ${refused[0]}`);
    if (service.isStopped) throw (await service.stopped) ?? new Error('the micro service stopped at once');
    return service;
  } catch (err) {
    await service?.stop().catch(() => undefined);
    throw err;
  } finally {
    (statuses as { stop?: () => void }).stop?.();
  }
}
