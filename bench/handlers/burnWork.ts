/**
 * The CPU-heavy work of the scaling and event-loop benches: a loop-carried integer recurrence the JIT cannot
 * fold or skip, sized by the caller (calibrated on the main thread to take a given time).
 */
export function burn(iterations: number): number {
  let x = 1;
  for (let i = 0; i < iterations; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  return x;
}
