/**
 * What is wrong with the options a caller passed to `execute` (or a handler to a nested call), or undefined
 * when nothing is. Checked before anything runs: a signal that is no AbortSignal once made the pool take a
 * cancel slot, fail to subscribe, and never give the slot back.
 * @internal
 */
export function badExecuteOptions(options: unknown): string | undefined {
  if (options === undefined) return undefined;
  try {
    return check(options);
  } catch {
    // A getter or a proxy trap threw while the options were read.
    return 'options cannot be read';
  }
}

function check(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null) {
    return `options must be an object { signal?, metadata? }, got ${describe(options)}`;
  }
  const { signal, metadata } = options as { signal?: unknown; metadata?: unknown };
  if (signal !== undefined && !isAbortSignal(signal)) {
    return `options.signal must be an AbortSignal (controller.signal, AbortSignal.timeout(ms)), got ${describe(signal)}`;
  }
  if (
    metadata !== undefined &&
    (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
  ) {
    return `options.metadata must be an object of strings, got ${describe(metadata)}`;
  }
  return undefined;
}

function isAbortSignal(value: unknown): boolean {
  if (value instanceof AbortSignal) return true;
  // A signal from another realm or a polyfill: what the pool and the terminals use of it.
  const s = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown } | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.aborted === 'boolean' &&
    typeof s.addEventListener === 'function' &&
    typeof s.removeEventListener === 'function'
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `a ${name}` : 'a plain object';
}

/**
 * What is wrong with the options of `publish` (those of `execute`, plus `strategy`), or undefined.
 * @internal
 */
export function badPublishOptions(options: unknown): string | undefined {
  const bad = badExecuteOptions(options);
  if (bad !== undefined || options === undefined) return bad;
  try {
    const { strategy } = options as { strategy?: unknown };
    if (strategy !== undefined && strategy !== 'parallel' && strategy !== 'sequential') {
      const got = typeof strategy === 'string' ? JSON.stringify(strategy) : describe(strategy);
      return `options.strategy must be 'parallel' or 'sequential', got ${got}`;
    }
  } catch {
    return 'options cannot be read';
  }
  return undefined;
}
