// Runs inside cqrs-pool's threads (the `pool` variant): imported by the thread entry, never by the main thread.
import { handle } from '@cqrs-pool/core/worker';
import { hashPassword as hash } from './hash.js';
import { HashPassword } from './messages.js';

export const hashPassword = handle(HashPassword, (input) => hash(input));
