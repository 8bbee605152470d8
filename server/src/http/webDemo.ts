import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import express from 'express';

/** Folder of the web demo's built pages (web-demo/public, with the bundle under build/). */
export function webDemoRoot(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@cascade/web-demo/package.json')), 'public');
}

export interface WebDemoOptions {
  /**
   * The deployment's public base URL (`http.publicUrl`), given to the pages so that the share
   * link on /broadcast is one other people can open. Empty or absent: pages use their own address.
   */
  publicUrl?: string;
}

const escapeAttr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `/`, `/broadcast`, `/watch/<id>`, `/status/<id>`, `/account`, `/volunteer`, `/recordings`, `/replay/<id>` and their assets. */
export function webDemoRouter(options: WebDemoOptions = {}): express.Router {
  const root = webDemoRoot();
  const r = express.Router();
  if (!existsSync(path.join(root, 'build', 'app.js'))) {
    throw new Error(`web demo not built (${root}/build/app.js missing): run npm run build`);
  }
  const publicUrl = (options.publicUrl ?? '').replace(/\/+$/, '');
  // The page reads it from <meta name="cascade-public-url">; nothing is injected when it is not configured.
  const meta = publicUrl ? `<meta name="cascade-public-url" content="${escapeAttr(publicUrl)}">\n` : '';
  const page = (file: string) => async (_req: express.Request, res: express.Response, next: express.NextFunction) => {
    try {
      const html = await readFile(path.join(root, file), 'utf8');
      res.set('Cache-Control', 'no-cache').type('html').send(meta ? html.replace('</head>', `${meta}</head>`) : html);
    } catch (err) {
      next(err);
    }
  };
  r.get('/', page('index.html'));
  r.get('/broadcast', page('broadcast.html'));
  r.get('/watch/:id', page('watch.html'));
  r.get('/status/:id', page('status.html'));
  r.get('/account', page('account.html'));
  r.get('/volunteer', page('volunteer.html'));
  r.get('/recordings', page('recordings.html'));
  r.get('/replay/:id', page('replay.html'));
  r.use('/assets', express.static(root, { index: false, maxAge: '5m' }));
  return r;
}
