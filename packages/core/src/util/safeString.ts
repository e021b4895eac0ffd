/**
 * `String(value)` that never throws. Handlers may throw anything, and `String()` throws for an object with
 * no usable `toString` (a null-prototype object, one whose `toString` key holds a non-function or a
 * function that throws, a revoked proxy): building the caller's error message must not turn a
 * `HANDLER_FAILED` into a stray `TypeError`.
 * @internal
 */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return '[unprintable value]';
    }
  }
}
