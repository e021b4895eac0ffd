import { badExecuteOptions } from './badExecuteOptions.js';
import type { StreamOptions } from './HandlerContext.js';

/** `highWaterMark` when `stream()` is given none. @internal */
export const DEFAULT_HIGH_WATER_MARK = 1024;
/** The largest `highWaterMark` accepted: far above what pays off, low enough that credits fit a shared word. @internal */
export const MAX_HIGH_WATER_MARK = 2 ** 20;

/**
 * What is wrong with the options of `stream` (those of `execute`, plus `highWaterMark`), or undefined.
 * @internal
 */
export function badStreamOptions(options: unknown): string | undefined {
  const bad = badExecuteOptions(options);
  if (bad !== undefined || options === undefined) return bad;
  try {
    const { highWaterMark } = options as { highWaterMark?: unknown };
    if (
      highWaterMark !== undefined &&
      (typeof highWaterMark !== 'number' ||
        !Number.isInteger(highWaterMark) ||
        highWaterMark < 1 ||
        highWaterMark > MAX_HIGH_WATER_MARK)
    ) {
      return `options.highWaterMark must be an integer from 1 to ${MAX_HIGH_WATER_MARK}, got ${String(highWaterMark)}`;
    }
  } catch {
    return 'options cannot be read';
  }
  return undefined;
}

/** The high-water mark of options already checked by {@link badStreamOptions}. @internal */
export function highWaterMarkOf(options: StreamOptions | undefined): number {
  return options?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
}
