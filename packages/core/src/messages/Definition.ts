import type { z } from 'zod';

/** Whether a message changes state (`command`), reads it (`query`) or tells what happened (`event`). */
export type MessageKind = 'command' | 'query' | 'event';

/**
 * A named message with its zod schemas: the single source of its TypeScript types and its runtime validation.
 * Made by {@link defineCommand}, {@link defineQuery} or {@link defineEvent} (whose `input` is its `payload`).
 */
export interface Definition<
  K extends MessageKind = MessageKind,
  N extends string = string,
  I extends z.ZodType = z.ZodType,
  O extends z.ZodType | undefined = z.ZodType | undefined,
> {
  readonly name: N;
  readonly kind: K;
  readonly input: I;
  readonly output: O;
}

/** A command definition. */
export type CommandDefinition<
  N extends string = string,
  I extends z.ZodType = z.ZodType,
  O extends z.ZodType | undefined = z.ZodType | undefined,
> = Definition<'command', N, I, O>;

/** A query definition. */
export type QueryDefinition<
  N extends string = string,
  I extends z.ZodType = z.ZodType,
  O extends z.ZodType | undefined = z.ZodType | undefined,
> = Definition<'query', N, I, O>;

/**
 * An event definition: a fact that happened, published to every subscriber. `payload` is its schema; `input`
 * is the same schema, so middleware written for commands and queries (validation, logging) read it as
 * they read an input.
 */
export interface EventDefinition<N extends string = string, P extends z.ZodType = z.ZodType>
  extends Definition<'event', N, P, undefined> {
  readonly payload: P;
}

/**
 * A streaming query: its handler yields many items (an async generator) that reach the caller while it runs,
 * read with `QueryBus.stream`. `item` types (and, with `validation({ output: true })`, validates) each item;
 * `output` is unused. Made by {@link defineStreamQuery}.
 */
export interface StreamQueryDefinition<
  N extends string = string,
  I extends z.ZodType = z.ZodType,
  T extends z.ZodType = z.ZodType,
> extends Definition<'query', N, I, undefined> {
  readonly item: T;
  /** Tells a streaming query from a plain one. */
  readonly stream: true;
}

/** What a stream's consumer receives: the item schema's output type. */
export type ItemOf<D extends StreamQueryDefinition> = z.output<D['item']>;

/** What a publisher passes to `publish`: the payload schema's input type (before defaults and transforms). */
export type PayloadOf<D extends EventDefinition> = z.input<D['payload']>;

/** What a subscriber receives: the payload schema's output type (after the publish-time parse). */
export type ParsedPayloadOf<D extends EventDefinition> = z.output<D['payload']>;

/** What a caller passes to `execute`: the input schema's input type (before defaults and transforms). */
export type InputOf<D extends Definition> = z.input<D['input']>;

/** What a handler receives: the input schema's output type (after validation's parse). */
export type ParsedInputOf<D extends Definition> = z.output<D['input']>;

/** What `execute` resolves to: the output schema's type, or `unknown` when the definition declares none. */
export type ResultOf<D extends Definition> = D['output'] extends z.ZodType ? z.output<D['output']> : unknown;

/** The schemas passed to {@link defineCommand} and {@link defineQuery}. */
export interface DefinitionSchemas<I extends z.ZodType, O extends z.ZodType | undefined> {
  /** Validates and types the input. */
  input: I;
  /** Types the result; validated too when `validation({ output: true })` is in the chain. Use `z.custom<T>()` for a type only. */
  output?: O;
}
