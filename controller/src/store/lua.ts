/**
 * TypeScript values written into Lua source, so that a Redis script and the code around it
 * read key names and constants from one definition instead of two copies kept in step by hand.
 */

type Ids<T extends string> = T extends `${string}{}${infer Rest}` ? [string, ...Ids<Rest>] : [];

/** A Redis key with ids in it: `redisKey('cascade:stream:{}:tree')('s1')` is `cascade:stream:s1:tree`. */
export interface RedisKey<T extends string = string> {
  (...ids: Ids<T>): string;
  readonly template: T;
}

export function redisKey<const T extends string>(template: T): RedisKey<T> {
  const pieces = template.split('{}');
  const fn = (...ids: string[]) => pieces.reduce((out, piece, i) => out + piece + (i < ids.length ? ids[i] : ''), '');
  return Object.assign(fn as unknown as RedisKey<T>, { template });
}

/** A Lua string literal. Only the characters key names use: nothing here needs escaping. */
export function luaString(s: string): string {
  if (!/^[\w:.-]*$/.test(s)) throw new TypeError(`not a plain key name: ${s}`);
  return `'${s}'`;
}

function luaValue(v: string | number): string {
  if (typeof v === 'string') return luaString(v);
  if (!Number.isFinite(v)) throw new TypeError(`no Lua literal for ${v}`);
  return String(v);
}

/** `local NAME = value` for each entry: the constants a script shares with TypeScript. */
export function luaLocals(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([name, v]) => `local ${name} = ${luaValue(v)}`)
    .join('\n');
}

/** `local function name(a, b) return 'prefix' .. a .. ':' .. b end` for each key with ids. */
export function luaKeyFunctions(keys: Record<string, RedisKey>): string {
  return Object.entries(keys)
    .map(([name, key]) => {
      const pieces = key.template.split('{}');
      const args = pieces.slice(1).map((_, i) => `a${i + 1}`);
      const parts: string[] = [];
      pieces.forEach((piece, i) => {
        if (piece !== '') parts.push(luaString(piece));
        if (i < args.length) parts.push(args[i]!);
      });
      return `local function ${name}(${args.join(', ')}) return ${parts.join(' .. ')} end`;
    })
    .join('\n');
}
