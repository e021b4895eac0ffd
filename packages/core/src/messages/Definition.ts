import type { z } from 'zod';

/** Whether a message changes state (`command`) or reads it (`query`). */
export type MessageKind = 'command' | 'query';

/**
 * A named message with its zod schemas: the single source of its TypeScript types and its runtime validation.
 * Made by {@link defineCommand} or {@link defineQuery}.
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
