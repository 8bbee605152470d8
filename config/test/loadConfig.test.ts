import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConfig, envNameFor, loadConfig } from '../src/index.js';

const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as Error & { code: string };
  }
  throw new Error('expected an error');
};

describe('loadConfig()', () => {
  it('gives sane defaults for the single-machine run', () => {
    const c = loadConfig({ env: { HOME: '/home/u' }, hostname: 'box' });
    expect(c.mode).toBe('development');
    expect(c.http.port).toBe(8080);
    expect(c.roles).toEqual(['origin', 'controller']);
    expect(c.redis.url).toBe('');
    expect(c.mediasoup.workerBin).toBe('/home/u/.cache/cascade/mediasoup-worker-3.12.16/mediasoup-worker');
    expect(c.mediasoup.numWorkers).toBeGreaterThan(0);
    expect(c.nodeId).toBe('box-8080');
  });

  it('takes file < environment < overrides, named after the key path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cascade-config-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'origin:\n  maxViewers: 5\n  maxStreams: 3\ntopology:\n  maxChildren: 4\n');
    const c = loadConfig({ file, env: { CASCADE_ORIGIN_MAX_VIEWERS: '2' }, overrides: { topology: { maxChildren: 6 } } });
    expect(c.origin.maxViewers).toBe(2);
    expect(c.origin.maxStreams).toBe(3);
    expect(c.topology.maxChildren).toBe(6);
    expect(envNameFor(['origin', 'maxViewers'])).toBe('CASCADE_ORIGIN_MAX_VIEWERS');
  });

  it('parses JSON for list values in the environment', () => {
    const c = loadConfig({ env: { CASCADE_ICE_SERVERS: '[{"urls":"stun:stun.example.org:3478"}]' } });
    expect(c.iceServers).toEqual([{ urls: 'stun:stun.example.org:3478' }]);
  });

  it('lists every bad key in one CASCADE_ERR_CONFIG_INVALID', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cascade-config-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'origin:\n  maxViewerz: 5\n');
    const err = errorOf(() =>
      loadConfig({ file, env: { CASCADE_HTTP_PORT: 'eighty', CASCADE_TYPO_KEY: '1', CASCADE_MODE: 'production' } }),
    );
    expect(err.code).toBe('CASCADE_ERR_CONFIG_INVALID');
    expect(err.message).toContain('http.port');
    expect(err.message).toContain('CASCADE_TYPO_KEY');
    expect(err.message).toContain('maxViewerz');
    expect(err.message).toContain('auth.secret');
  });

  it('refuses production mode without a secret', () => {
    expect(errorOf(() => loadConfig({ env: { CASCADE_MODE: 'production' } })).message).toContain('auth.secret');
    expect(loadConfig({ env: { CASCADE_MODE: 'production', CASCADE_AUTH_SECRET: randomBytes(32).toString('hex') } }).mode).toBe('production');
  });

  it('refuses a production secret of less than 32 bytes of entropy, and takes what openssl rand prints', () => {
    const production = (secret: string) => () => loadConfig({ env: { CASCADE_MODE: 'production', CASCADE_AUTH_SECRET: secret } });
    for (const weak of ['x'.repeat(64), 'correct-horse-battery', randomBytes(16).toString('hex'), 'abababababababababababababababababababab']) {
      const err = errorOf(production(weak));
      expect(err.code).toBe('CASCADE_ERR_CONFIG_INVALID');
      expect(err.message).toContain('auth.secret: too weak');
    }
    expect(production(randomBytes(32).toString('hex'))().auth.secret).toHaveLength(64);
    expect(production(randomBytes(32).toString('base64'))().mode).toBe('production');
    // Development mode keeps taking short secrets (the README's tree example uses one).
    expect(loadConfig({ env: { CASCADE_AUTH_SECRET: 'try-the-tree-0123456789' } }).mode).toBe('development');
  });

  it('returns a deeply frozen object', () => {
    const c = loadConfig({ env: {} });
    expect(Object.isFrozen(c.origin)).toBe(true);
    expect(() => ((c.origin as { maxViewers: number }).maxViewers = 1)).toThrow();
  });

  it('describes every key with its variable and default', () => {
    const keys = describeConfig();
    expect(keys.find((k) => k.key === 'origin.maxViewers')).toMatchObject({ env: 'CASCADE_ORIGIN_MAX_VIEWERS', default: 200 });
  });
});
