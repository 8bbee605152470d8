import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import express from 'express';

/** Folder of the web demo's built pages (web-demo/public, with the bundle under build/). */
export function webDemoRoot(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@cascade/web-demo/package.json')), 'public');
}

/** `/`, `/broadcast`, `/watch/<id>` and their assets. */
export function webDemoRouter(): express.Router {
  const root = webDemoRoot();
  const r = express.Router();
  if (!existsSync(path.join(root, 'build', 'app.js'))) {
    throw new Error(`web demo not built (${root}/build/app.js missing): run npm run build`);
  }
  const page = (file: string) => (_req: express.Request, res: express.Response) => {
    res.set('Cache-Control', 'no-cache').sendFile(path.join(root, file));
  };
  r.get('/', page('index.html'));
  r.get('/broadcast', page('broadcast.html'));
  r.get('/watch/:id', page('watch.html'));
  r.use('/assets', express.static(root, { index: false, maxAge: '5m' }));
  return r;
}
