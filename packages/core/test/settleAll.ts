/** Settles every call, bounded: a call still pending after `timeoutMs` fails the test instead of hanging it. */
export async function settleAll<T>(
  calls: Promise<T>[],
  timeoutMs = 15_000,
): Promise<PromiseSettledResult<T>[]> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`calls still pending after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.allSettled(calls), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
