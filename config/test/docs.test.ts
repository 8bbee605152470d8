import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../src/index.js';
// @ts-expect-error plain ESM script without types
import { configMarkdown, errorsMarkdown } from '../../scripts/gen-docs.mjs';

const root = new URL('../../', import.meta.url);

describe('reference docs and deployment files', () => {
  it('docs/errors.md and docs/configuration.md match the code (run npm run docs)', () => {
    expect(readFileSync(new URL('docs/errors.md', root), 'utf8')).toBe(errorsMarkdown());
    expect(readFileSync(new URL('docs/configuration.md', root), 'utf8')).toBe(configMarkdown());
  });

  it('docker-compose.yml only sets configuration variables Cascade knows', () => {
    const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; command?: string[] }>;
    };
    const known = new Set(describeConfig().map((k) => k.env));
    expect(Object.keys(compose.services).sort()).toEqual(['origin', 'redis', 'relay1', 'relay2']);
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const key of Object.keys(svc.environment ?? {})) {
        expect(known.has(key), `${name}: ${key}`).toBe(true);
      }
    }
    expect(compose.services.relay1!.command).toContain('relay/dist/cli.js');
    expect(compose.services.relay1!.environment?.CASCADE_RELAY_TOKEN).toBe('${CASCADE_RELAY1_TOKEN:-}');
  });

  it('docker-compose.yml marks no variable required: Compose would demand it for every service and command', () => {
    // `${VAR:?msg}` / `${VAR?msg}` fail `docker compose up redis origin` when only a relay needs VAR.
    const text = readFileSync(new URL('docker-compose.yml', root), 'utf8').replace(/^\s*#.*$/gm, '');
    expect(text).not.toMatch(/\$\{[A-Za-z_][A-Za-z0-9_]*:?\?/);
  });
});
