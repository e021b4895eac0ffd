/** Settles within `ms` or fails the test: a hang must show as a failure, not a stalled run. */
export async function within<T>(ms: number, pending: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([pending, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error `pending` rejects with (within `ms`); fails the test when it resolves. */
export async function failure(pending: Promise<unknown>, ms = 5_000): Promise<unknown> {
  return within(
    ms,
    pending.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (err: unknown) => err,
    ),
  );
}

/** Polls `condition` until it holds; fails after `ms`. */
export async function eventually(
  condition: () => boolean,
  ms = 5_000,
  what = 'the condition',
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
