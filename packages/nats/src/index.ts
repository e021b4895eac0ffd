// `@cqrs-pool/nats`: remote command and query execution over NATS request/reply with queue groups.
export type { Codec } from './Codec.js';
export type { CodecLimits } from './codecLimits.js';
export { DEFAULT_LIMITS } from './codecLimits.js';
export type { MetadataFilter, MetadataPolicy, MetadataRequest } from './metadataPolicy.js';
export type { ServiceOptions } from './microService.js';
export { NatsServer } from './NatsServer.js';
export type { PlainJsonLimits } from './plainJson.js';
export { createPlainJson, plainJson } from './plainJson.js';
export type { RemoteClientOptions } from './RemoteClient.js';
export { RemoteClient } from './RemoteClient.js';
export type { RemoteOptions } from './remote.js';
export { remote } from './remote.js';
export type { RemoteStreamOptions } from './remoteStream.js';
export { remoteStream } from './remoteStream.js';
export type { NatsServerStats, RegisteredService, ServeOptions } from './ServeOptions.js';
export { serve } from './serve.js';
export { DEFAULT_PREFIX, subjectFor } from './subjects.js';
export { createTaggedJson, taggedJson } from './taggedJson.js';
