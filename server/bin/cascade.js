#!/usr/bin/env node
// npm links a workspace's bins when it installs, before the build has written dist/ (and skips
// a link whose target is missing): this file exists from the start and loads the built CLI.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('cascade: not built yet; run `npm run build` (or `npm start` once) in the repository first');
  process.exit(1);
}
await import(cli.href);
