// `npm run pack:relay`: the relay as one npm package a volunteer installs without the repository.
//
// relay/dist/cli.js and every workspace package it imports (@cascade/*), with their pure-JS
// dependencies, are bundled by esbuild into lib/cli.js. The package depends only on what cannot
// be bundled: mediasoup (its worker binary comes from mediasoup's own install, a prebuilt download
// where mediasoup has one, or MEDIASOUP_WORKER_BIN). Output: relay/pack/cascade-relay/ and
// relay/pack/cascade-relay-<version>.tgz (printed last). Needs a build first (npm run build).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'relay/dist/cli.js');
if (!existsSync(entry)) {
  console.error('pack-relay: relay/dist/cli.js is missing; run `npm run build` first');
  process.exit(1);
}
const relayPkg = JSON.parse(readFileSync(path.join(root, 'relay/package.json'), 'utf8'));
const sfuPkg = JSON.parse(readFileSync(path.join(root, 'sfu/package.json'), 'utf8'));
/** Not bundled: mediasoup finds its worker relative to its own files, and installs it. */
const EXTERNAL = { mediasoup: sfuPkg.dependencies.mediasoup };

const outRoot = path.join(root, 'relay/pack');
const out = path.join(outRoot, 'cascade-relay');
rmSync(outRoot, { recursive: true, force: true });
mkdirSync(path.join(out, 'bin'), { recursive: true });
mkdirSync(path.join(out, 'lib'), { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: [entry],
  outfile: path.join(out, 'lib/cli.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: Object.keys(EXTERNAL),
  // CommonJS dependencies call require() for Node's modules; an ES module has none of its own.
  banner: { js: "import { createRequire as __cascadeCreateRequire } from 'node:module';\nconst require = __cascadeCreateRequire(import.meta.url);" },
  legalComments: 'eof',
  logLevel: 'warning',
});

// The bin: use the worker mediasoup's install provides unless one is configured.
writeFileSync(
  path.join(out, 'bin/cascade-relay.js'),
  `#!/usr/bin/env node
// cascade-relay, packed by scripts/pack-relay.mjs. The relay looks for its mediasoup worker in
// MEDIASOUP_WORKER_BIN (or CASCADE_MEDIASOUP_WORKER_BIN, or ~/.cache/cascade); outside the
// repository the worker is the one mediasoup's own install put next to it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

if (!process.env.MEDIASOUP_WORKER_BIN && !process.env.CASCADE_MEDIASOUP_WORKER_BIN) {
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve('mediasoup/package.json'));
    const bin = path.join(dir, 'worker', 'out', 'Release', process.platform === 'win32' ? 'mediasoup-worker.exe' : 'mediasoup-worker');
    if (existsSync(bin)) process.env.MEDIASOUP_WORKER_BIN = bin;
  } catch {
    // mediasoup not resolvable: the relay says where it looked
  }
}
await import('../lib/cli.js');
`,
  { mode: 0o755 },
);

writeFileSync(
  path.join(out, 'package.json'),
  `${JSON.stringify(
    {
      name: 'cascade-relay',
      version: relayPkg.version,
      description: 'Cascade volunteer relay: helps carry live streams to viewers.',
      license: 'MIT',
      type: 'module',
      bin: { 'cascade-relay': 'bin/cascade-relay.js' },
      files: ['bin', 'lib', 'README.md'],
      engines: { node: '>=20' },
      dependencies: EXTERNAL,
    },
    null,
    2,
  )}\n`,
);

writeFileSync(
  path.join(out, 'README.md'),
  `# cascade-relay

Helps carry a Cascade deployment's live streams to viewers. Needs Node.js 20 or later.

    npm install -g cascade-relay-${relayPkg.version}.tgz
    cascade-relay --controller https://live.example.org --token <token from the operator>

\`cascade-relay --help\` lists every option. mediasoup's install downloads its worker binary for
your platform (or builds it, which needs Python 3, make and a C++ compiler); to use a worker you
built yourself, set MEDIASOUP_WORKER_BIN to its path before installing and before running.
`,
);

// Nothing of this machine may leak into the package (paths of the repository or of the builder).
const leaks = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (readFileSync(p, 'utf8').includes(root)) leaks.push(path.relative(out, p));
  }
};
walk(out);
if (leaks.length) {
  console.error(`pack-relay: ${leaks.join(', ')} contain${leaks.length === 1 ? 's' : ''} the repository path ${root}`);
  process.exit(1);
}

const tgz = execFileSync('npm', ['pack', '--pack-destination', outRoot, '--loglevel=error'], { cwd: out, encoding: 'utf8' }).trim().split('\n').pop();
console.log(path.join(outRoot, tgz));
