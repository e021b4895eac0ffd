import type { BusOptions } from './Dispatcher.js';
import { Dispatcher } from './Dispatcher.js';

/** Routes commands (state changes) to their handlers, inline or in the worker pool. */
export class CommandBus extends Dispatcher<'command'> {
  /** @throws CqrsError `INVALID_REGISTRATION` for a bad option. */
  constructor(options: BusOptions = {}) {
    super('command', options);
  }

  /** The names of the registered commands, in registration order. */
  getRegisteredCommands(): string[] {
    return this.registeredNames();
  }
}
