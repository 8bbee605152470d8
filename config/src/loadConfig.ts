import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { CascadeError } from '@cascade/protocol';
import { ConfigSchema, type CascadeConfig } from './schema.js';
import { MIN_SECRET_BITS, secretEntropyBits } from './secret.js';

export const MEDIASOUP_VERSION = '3.12.16';

export interface LoadConfigOptions {
  /** Environment to read CASCADE_* variables from (the composition root passes process.env). */
  env?: Record<string, string | undefined>;
  /** YAML or JSON file. Default: $CASCADE_CONFIG if set. */
  file?: string;
  /** Highest precedence, e.g. command-line flags, as a partial config object. */
  overrides?: Record<string, unknown>;
  /** For derived defaults. Default os.hostname(). */
  hostname?: string;
}

/** Variables that are not config keys but are read by tooling; never reported as unknown. */
const NON_CONFIG_VARS = new Set(['CASCADE_CONFIG']);
const NON_CONFIG_PREFIXES = ['CASCADE_TEST_', 'CASCADE_BENCH_', 'CASCADE_CACHE_'];

/** `origin.maxViewers` → `CASCADE_ORIGIN_MAX_VIEWERS`. */
export function envNameFor(keyPath: string[]): string {
  return 'CASCADE_' + keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

interface Leaf {
  path: string[];
  schema: TSchema;
}

function leaves(schema: TSchema, prefix: string[] = []): Leaf[] {
  if (schema[Kind] === 'Object' && schema.properties) {
    return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([k, s]) => leaves(s, [...prefix, k]));
  }
  return [{ path: prefix, schema }];
}

/** Every config key with its env var name and default, for `--help` and the README. */
export function describeConfig(): { key: string; env: string; default: unknown; description?: string }[] {
  return leaves(ConfigSchema).map((l) => ({
    key: l.path.join('.'),
    env: envNameFor(l.path),
    default: l.schema.default,
    description: l.schema.description,
  }));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

function setPath(obj: Record<string, unknown>, keyPath: string[], value: unknown): void {
  let o = obj;
  for (const k of keyPath.slice(0, -1)) {
    if (!isPlainObject(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keyPath[keyPath.length - 1]!] = value;
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function envValue(leaf: Leaf, raw: string): unknown {
  const kind = leaf.schema[Kind];
  // Arrays and objects come as JSON; scalars are converted from strings by the schema below.
  if (kind === 'Array' || kind === 'Object' || (kind === 'Union' && raw.trim().startsWith('['))) {
    return JSON.parse(raw);
  }
  if (kind === 'Integer' || kind === 'Number') return raw.trim() === '' ? raw : Number(raw);
  if (kind === 'Boolean') return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  return raw;
}

/**
 * Build the frozen configuration: schema defaults < file < environment < overrides.
 * Throws CASCADE_ERR_CONFIG_INVALID listing every problem at once.
 */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<CascadeConfig> {
  const env = options.env ?? {};
  const problems: string[] = [];
  let merged: Record<string, unknown> = {};

  const file = options.file ?? env.CASCADE_CONFIG;
  if (file) {
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true, strict: true });
      if (parsed !== null && parsed !== undefined) {
        if (!isPlainObject(parsed)) problems.push(`${file}: top level must be a mapping`);
        else merged = parsed;
      }
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  const known = new Map(leaves(ConfigSchema).map((l) => [envNameFor(l.path), l]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('CASCADE_') || raw === undefined) continue;
    const leaf = known.get(name);
    if (!leaf) {
      if (!NON_CONFIG_VARS.has(name) && !NON_CONFIG_PREFIXES.some((p) => name.startsWith(p))) {
        problems.push(`${name}: unknown environment variable (not a config key)`);
      }
      continue;
    }
    try {
      setPath(merged, leaf.path, envValue(leaf, raw));
    } catch {
      problems.push(`${name}: not valid JSON`);
    }
  }
  if (options.overrides) merged = deepMerge(merged, options.overrides);

  const withDefaults = Value.Default(ConfigSchema, Value.Clone(merged)) as Record<string, unknown>;
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    const key = e.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    problems.push(`${key}: ${e.message}`);
  }
  // Cross-key rules, checked even when other keys are wrong so that one run lists everything.
  const c = withDefaults as Partial<CascadeConfig>;
  if (c.mode === 'production') {
    const secret = typeof c.auth?.secret === 'string' ? c.auth.secret : '';
    if (!secret) problems.push('auth.secret: required in production mode (set CASCADE_AUTH_SECRET=$(openssl rand -hex 32))');
    else if (secretEntropyBits(secret) < MIN_SECRET_BITS) {
      problems.push(`auth.secret: too weak for production (about ${secretEntropyBits(secret)} bits; at least ${MIN_SECRET_BITS}: openssl rand -hex 32)`);
    }
  }
  if (Number(c.mediasoup?.rtcMinPort) > Number(c.mediasoup?.rtcMaxPort)) {
    problems.push('mediasoup.rtcMinPort: must not exceed mediasoup.rtcMaxPort');
  }
  if (problems.length > 0) {
    throw new CascadeError('CASCADE_ERR_CONFIG_INVALID', `\n  - ${problems.join('\n  - ')}`);
  }

  const config = withDefaults as CascadeConfig;
  if (!config.mediasoup.workerBin) config.mediasoup.workerBin = defaultWorkerBin(env);
  if (config.mediasoup.numWorkers === 0) config.mediasoup.numWorkers = Math.max(1, os.availableParallelism());
  if (!config.nodeId) config.nodeId = `${options.hostname ?? os.hostname()}-${config.http.port}`.replace(/[^A-Za-z0-9_.:-]/g, '-');
  return deepFreeze(config);
}

/** Where scripts/setup.sh has the worker built and cached (same knobs, same order). */
export function defaultWorkerBin(env: Record<string, string | undefined>): string {
  if (env.MEDIASOUP_WORKER_BIN) return env.MEDIASOUP_WORKER_BIN;
  const cache = env.CASCADE_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'cascade');
  return path.join(cache, `mediasoup-worker-${MEDIASOUP_VERSION}`, 'mediasoup-worker');
}
