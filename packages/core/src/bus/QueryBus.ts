import type { BusOptions } from './Dispatcher.js';
import { Dispatcher } from './Dispatcher.js';

/** Routes queries (reads) to their handlers, inline or in the worker pool. */
export class QueryBus extends Dispatcher<'query'> {
  /** @throws CqrsError `INVALID_REGISTRATION` for a bad option. */
  constructor(options: BusOptions = {}) {
    super('query', options);
  }

  /** The names of the registered queries, in registration order. */
  getRegisteredQueries(): string[] {
    return this.registeredNames();
  }
}
