/**
 * Marks a handler's error as permanent: a durable command (or event) that fails with it is dead-lettered at
 * once instead of being retried — for failures no retry can cure (a business rule refused the command, the
 * input refers to nothing). The mark is an own field, `permanent: true`, so it survives the trip from a
 * pool thread (errors cross threads as plain data with their own fields). Returns the same error.
 *
 * @example
 * ```ts
 * if (account.closed) throw permanent(Object.assign(new Error('account closed'), { code: 'ACCOUNT_CLOSED' }));
 * ```
 */
export function permanent<E extends Error>(error: E): E & { readonly permanent: true } {
  Object.defineProperty(error, 'permanent', {
    value: true,
    enumerable: true,
    configurable: true,
    writable: true,
  });
  return error as E & { readonly permanent: true };
}
