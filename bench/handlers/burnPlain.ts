import { burn } from './burnWork.js';

/** The CPU-bound task for raw piscina. */
export default function burnTask(input: { iterations: number }): number {
  return burn(input.iterations);
}
