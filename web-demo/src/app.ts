/**
 * The web demo: `/` lists live streams, `/broadcast` goes live from the webcam, `/watch/<id>`
 * plays a stream, `/status/<id>` shows the tree that carries it; account, volunteer and
 * recordings pages besides. One module per page; `page.ts` holds what they share. Bundled for
 * the browser with the client SDK. Page state is mirrored on `window.cascadeDemo` so that
 * end-to-end tests (and curious users) can read it.
 */
import { accountPage } from './account.js';
import { broadcastPage } from './broadcast.js';
import { homePage } from './home.js';
import { demo } from './page.js';
import { recordingsPage, replayPage } from './replay.js';
import { showAccountLink } from './session.js';
import { statusPage } from './status.js';
import { volunteerPage } from './volunteer.js';
import { watchPage } from './watch.js';

const pages: Record<string, () => Promise<void>> = {
  home: homePage,
  broadcast: broadcastPage,
  watch: watchPage,
  status: statusPage,
  account: () => accountPage(demo),
  volunteer: () => volunteerPage(demo),
  recordings: () => recordingsPage(demo),
  replay: () => replayPage(demo),
};
void showAccountLink();
void pages[demo.page]?.();
