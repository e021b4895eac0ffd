/** The echo task for piscina and tinypool, which call a module's default export with the task's data. */
export default function echo(input: unknown): unknown {
  return input;
}
