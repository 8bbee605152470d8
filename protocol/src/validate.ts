import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { CascadeError, type ErrorCode } from './errors.js';

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Up to `max` human-readable problems, e.g. "/rtpParameters/codecs: Expected array". */
export function schemaErrors(schema: TSchema, value: unknown, max = 5): string[] {
  const out: string[] = [];
  for (const e of checker(schema).Errors(value)) {
    out.push(`${e.path || '/'}: ${e.message}`);
    if (out.length >= max) break;
  }
  return out;
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}

/** Validate or throw a coded error listing the first problems found. */
export function assertValid<T extends TSchema>(
  schema: T,
  value: unknown,
  code: ErrorCode = 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS',
): asserts value is Static<T> {
  if (!checker(schema).Check(value)) throw new CascadeError(code, schemaErrors(schema, value).join('; '));
}
