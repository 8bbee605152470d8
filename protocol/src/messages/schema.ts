/**
 * Building blocks of the message schemas, shared by the files in this folder and not part of
 * the package's exports (messages.ts re-exports only the public shapes).
 */
import { Type, type TProperties, type TSchema } from '@sinclair/typebox';

export const Token = Type.String({ minLength: 1, maxLength: 4096 });
export const Id = Type.String({ minLength: 1, maxLength: 128 });
export const Count = (max: number) => Type.Integer({ minimum: 0, maximum: max });
export const Kbps = Type.Number({ minimum: 0, maximum: 100_000_000 });

/** A loosely checked object: mediasoup validates the inside. */
export const Loose = <T extends TProperties>(props: T) => Type.Object(props, { additionalProperties: true });

/** Spatial layers (simulcast encodings) a stream may have: the index of the highest is at most this minus one. */
export const MAX_LAYERS = 4;
export const SpatialLayer = Type.Integer({ minimum: 0, maximum: MAX_LAYERS - 1 });

/** One request type: what it takes and what it answers. */
export function req<P extends TSchema, R extends TSchema>(params: P, result: R) {
  return { params, result };
}
export const Empty = Type.Object({});

export type Defs = Record<string, { params: TSchema; result: TSchema }>;
