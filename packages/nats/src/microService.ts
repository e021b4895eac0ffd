import { CqrsError } from '@cqrs-pool/core';

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
