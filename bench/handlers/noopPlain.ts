/** The do-nothing task for raw piscina, which calls a module's default export with the task's data. */
export default function noop(_input: unknown): void {}
