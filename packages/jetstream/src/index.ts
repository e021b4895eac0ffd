// `@cqrs-pool/jetstream`: durable commands and events on NATS JetStream.
export type { DurableServeOptions } from './commands/DurableCommandServer.js';
export { DurableCommandServer } from './commands/DurableCommandServer.js';
export type { CommandReceipt, OrderingSource, SendOptions } from './commands/sendCommand.js';
export type { DurableOptions } from './config/DurableOptions.js';
export type { DeliveryStats } from './consume/DeliveryProcessor.js';
export type { DeadLetterReason } from './consume/writeDeadLetter.js';
export type { DurableMessagingOptions, WaitOptions } from './DurableMessaging.js';
export { DurableMessaging, durableMessaging } from './DurableMessaging.js';
export type { DeadLetter } from './deadLetters/DeadLetters.js';
export { DeadLetters } from './deadLetters/DeadLetters.js';
export type { SubscribeOptions } from './events/DurableEventSubscription.js';
export { DurableEventSubscription } from './events/DurableEventSubscription.js';
export type {
  DurableEvent,
  DurableEventHandler,
  EventDeliveryReport,
  EventSink,
} from './events/EventSink.js';
export type { PublishOptions } from './events/publishEvent.js';
export { isPermanentFailure } from './failures/isPermanentFailure.js';
export { permanent } from './failures/permanent.js';
export type { MessageTarget } from './send/messageTarget.js';
export type { SendReceipt } from './send/storeMessage.js';
export { DurableHeaders, DurableMetadata } from './wire/DurableHeaders.js';
export { MAX_MESSAGE_ID_LENGTH } from './wire/messageId.js';
export { partitionOf } from './wire/partitionOf.js';
