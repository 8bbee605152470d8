import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Bump when the clip below changes. */
const VERSION = 1;

/**
 * A camera picture that costs an encoder what a real one does: ffmpeg's testsrc2 (moving
 * shapes, gradients, a counter) as MJPEG, four seconds that Chromium loops
 * (`--use-file-for-fake-video-capture`). Chromium's own fake camera is so simple that a VP8
 * layer meant for 500 kbit/s needs a fraction of it, which hides what a bandwidth cap does.
 * Made once with ffmpeg (about a second) and cached in ~/.cache/cascade.
 */
export function ensureFakeCamera(height: 360 | 720 = 720): string {
  const dir = path.join(process.env.CASCADE_CACHE_DIR || path.join(homedir(), '.cache', 'cascade'));
  const file = path.join(dir, `fake-camera-v${VERSION}-${height}p.mjpeg`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const size = `${Math.round((height * 16) / 9)}x${height}`;
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`, '-t', '4', '-q:v', '6', '-f', 'mjpeg', tmp], { timeout: 60_000 });
  renameSync(tmp, file);
  return file;
}
