// Runs in the serving node's pool threads.
import { handle } from '@cqrs-pool/core/worker';
import { CreateUser } from './messages.js';

/** Refuses user 13 with an error of its own (a code and a field), as a domain error would. */
export const createUser = handle(CreateUser, (input) => {
  if (input.userId === 13) {
    throw Object.assign(new Error('user 13 is reserved'), { code: 'E_RESERVED', reservedBy: 'admin' });
  }
  return { id: input.userId, username: input.username, email: input.email };
});
