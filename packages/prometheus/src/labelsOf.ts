import type { HandlerFigures } from './ScrapeReader.js';

/**
 * The labels of a handler's series: `handler` and `kind`, and `subscriber` for an event subscriber (its
 * `handler` is the event). Command and query series carry no `subscriber` label at all, so their series
 * read as they did before event subscribers were exported.
 */
export function labelsOf(figures: HandlerFigures): Record<string, string> {
  return figures.subscriber === undefined
    ? { handler: figures.handler, kind: figures.kind }
    : { handler: figures.handler, kind: figures.kind, subscriber: figures.subscriber };
}
