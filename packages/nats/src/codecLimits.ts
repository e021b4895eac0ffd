import { CqrsError } from '@cqrs-pool/core';

/**
 * What one value may cost to encode or decode. A serving node decodes what any caller sends on its main
 * thread, so these bound the work a single request can ask of it; the same bounds apply when encoding, so
 * what one side sends, the other accepts. Beyond a limit `encode` and `decode` throw a `RangeError` naming
 * the option (a request: `VALIDATION`; an input to send or a result: `NOT_CLONEABLE`).
 */
export interface CodecLimits {
  /**
   * Deepest nesting of JSON arrays and objects, counting the tagged wrappers (`{"$t":"m","v":[[k,v]]}` is
   * three levels around `v`). Decoding recurses once per level and structured clone to a pool thread
   * fails past ~2,000 levels, so this keeps both far from the stack's end. Default 256, at most 1,000.
   */
  readonly maxDepth?: number;
  /**
   * Longest `bigint`, in decimal digits (sign excluded). Turning decimal text into a `bigint` and back costs
   * time quadratic in its length (1,000,000 digits: ~0.3 s of CPU). Default 4,096 (~13,600 bits).
   */
  readonly maxBigIntDigits?: number;
  /**
   * Keys of `Map`s and members of `Set`s that are numbers or bigints, in one value. V8 hashes numbers
   * without a random seed, so crafted numbers all land in one bucket and building the collection takes
   * quadratic time (16,000 such keys: ~0.4 s). Strings, dates and objects are not counted. Default 2,048.
   */
  readonly maxNumericKeys?: number;
}

/** @internal */
export type ResolvedLimits = Required<CodecLimits>;

/** The limits when none are given. */
export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  maxDepth: 256,
  maxBigIntDigits: 4096,
  maxNumericKeys: 2048,
});

// Encoding recurses in JSON.stringify (with our replacer, ~4,000 levels fit the default stack) and structured
// clone to a pool thread gives up past ~2,000: a quarter of the first leaves room for the caller's own frames.
const MAX_DEPTH_CEILING = 1_000;

/**
 * Checks limits given to a codec factory.
 * @throws CqrsError `INVALID_REGISTRATION` naming the option.
 * @internal
 */
export function resolveLimits(limits: CodecLimits | undefined, where: string): ResolvedLimits {
  const given = limits ?? {};
  return Object.freeze({
    maxDepth: count(given.maxDepth, DEFAULT_LIMITS.maxDepth, `${where}.maxDepth`, MAX_DEPTH_CEILING),
    maxBigIntDigits: count(given.maxBigIntDigits, DEFAULT_LIMITS.maxBigIntDigits, `${where}.maxBigIntDigits`),
    maxNumericKeys: count(given.maxNumericKeys, DEFAULT_LIMITS.maxNumericKeys, `${where}.maxNumericKeys`),
  });
}

function count(value: unknown, fallback: number, option: string, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new CqrsError(
      'INVALID_REGISTRATION',
      `${option} must be an integer >= 1 and <= ${max}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Tracks nesting depth while `JSON.stringify` walks a value with a replacer. The replacer sees each value
 * with its holder as `this`, depth first, so the open objects form a stack: popping until the holder is on
 * top leaves the ancestors of the value, and their count is its depth. Amortized O(1) per object.
 * @internal
 */
export class DepthTracker {
  // The objects and arrays being written, outermost first. JSON.stringify's own wrapper around the top-level
  // value is never pushed: popping past every open object means the holder is that wrapper.
  private readonly open: unknown[] = [];

  constructor(private readonly maxDepth: number) {}

  /** `child` (an object or array about to be written) is a field of `holder`. @throws RangeError past maxDepth. */
  enter(holder: unknown, child: unknown): void {
    const open = this.open;
    while (open.length > 0 && open[open.length - 1] !== holder) open.pop();
    if (open.length >= this.maxDepth) throw tooDeep(this.maxDepth);
    open.push(child);
  }
}

/** @internal */
export function tooDeep(maxDepth: number): RangeError {
  return new RangeError(`nested deeper than ${maxDepth} levels (codec limit maxDepth)`);
}

/** @internal */
export function tooManyDigits(digits: number, max: number): RangeError {
  return new RangeError(`a bigint of ${digits} digits, over ${max} (codec limit maxBigIntDigits)`);
}

/** @internal */
export function tooManyNumericKeys(max: number): RangeError {
  return new RangeError(`more than ${max} numeric Map keys or Set members (codec limit maxNumericKeys)`);
}

/**
 * The decimal digits of `value` without writing them out when there are too many: `toString(10)` is
 * quadratic, `toString(16)` linear, and a hex digit is log10(16) ≈ 1.204 decimal digits.
 * @throws RangeError over `max`.
 * @internal
 */
export function bigintText(value: bigint, max: number): string {
  const magnitude = value < 0n ? -value : value;
  // 4 bits per hex digit; a value with h hex digits has at least ceil((h - 1) * 1.204) decimal digits.
  const hexDigits = magnitude.toString(16).length;
  if ((hexDigits - 1) * Math.log10(16) > max) throw tooManyDigits(Math.ceil(hexDigits * Math.log10(16)), max);
  const text = value.toString();
  const digits = value < 0n ? text.length - 1 : text.length;
  if (digits > max) throw tooManyDigits(digits, max);
  return text;
}
