// `@cqrs-pool/nats`: remote command and query execution over NATS request/reply with queue groups.
export type { Codec } from './Codec.js';
export { decodeMetadata, encodeMetadata } from './metadataHeader.js';
export type { NatsServerStats, ServeOptions } from './NatsServer.js';
export { NatsServer } from './NatsServer.js';
export type { RemoteClientOptions } from './RemoteClient.js';
export { RemoteClient } from './RemoteClient.js';
export type { RemoteOptions } from './remote.js';
export { remote } from './remote.js';
export { serve } from './serve.js';
export { DEFAULT_PREFIX, subjectFor } from './subjects.js';
export { taggedJson } from './taggedJson.js';
export { decodeError, encodeError } from './wireError.js';
