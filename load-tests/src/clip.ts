import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Bump when the encoding below changes, so an old cache file is not reused. */
const CLIP_VERSION = 1;
const ENCODE_TIMEOUT_MS = 120_000;

/** ~/.cache/cascade, or $XDG_CACHE_HOME/cascade when the caller passes it. */
export function defaultCacheDir(xdgCacheHome?: string): string {
  return path.join(xdgCacheHome || path.join(homedir(), '.cache'), 'cascade');
}

/**
 * The VP8 test clip (testsrc 640x360, 30 fps, one key frame per second, ~600 kbit/s), encoded
 * once and cached: replaying it with `-c:v copy` costs ~1 % CPU, while encoding live wobbles
 * between 18 and 35 fps on a busy 2-core box (test-clients/README.md).
 */
export async function ensureClip(cacheDir = defaultCacheDir()): Promise<string> {
  // prettier-ignore
  return encodeOnce(path.join(cacheDir, `loadtest-clip-v${CLIP_VERSION}.webm`), [
    '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=30', '-t', '20',
    '-c:v', 'libvpx', '-b:v', '600k', '-deadline', 'realtime', '-cpu-used', '8',
    '-g', '30', '-keyint_min', '30', '-error-resilient', '1', '-auto-alt-ref', '0', '-pix_fmt', 'yuv420p',
  ]);
}

/** Bump when the encoding of the audio+video clips changes. */
const AV_CLIP_VERSION = 1;
/** Opus at this bitrate (kbit/s) in the audio+video clips; the video gets the rest. */
export const AV_CLIP_AUDIO_KBPS = 32;

/**
 * An audio+video clip for a target total bitrate (kbit/s): Opus (a 440 Hz tone, 20 ms frames)
 * and VP8 (testsrc2, 30 fps, one key frame per second, constant bitrate), encoded once and
 * cached like ensureClip's. 640x360 up to 800 kbit/s, 1280x720 above. The capacity benchmark
 * feeds the same file to both servers.
 */
export async function ensureAvClip(totalKbps: number, cacheDir = defaultCacheDir()): Promise<string> {
  const kbps = Math.round(totalKbps);
  if (!(kbps >= 100 && kbps <= 20_000)) throw new RangeError(`clip bitrate ${totalKbps} kbit/s is out of 100..20000`);
  const video = `${kbps - AV_CLIP_AUDIO_KBPS}k`;
  const size = kbps <= 800 ? '640x360' : '1280x720';
  // prettier-ignore
  return encodeOnce(path.join(cacheDir, `loadtest-av-v${AV_CLIP_VERSION}-${kbps}k.webm`), [
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '20',
    '-c:v', 'libvpx', '-b:v', video, '-minrate', video, '-maxrate', video, '-deadline', 'realtime', '-cpu-used', '8',
    '-g', '30', '-keyint_min', '30', '-error-resilient', '1', '-auto-alt-ref', '0', '-pix_fmt', 'yuv420p',
    '-c:a', 'libopus', '-b:a', `${AV_CLIP_AUDIO_KBPS}k`, '-ac', '2', '-frame_duration', '20',
  ]);
}

/**
 * `file`, encoded by ffmpeg with `args` (inputs and codecs) unless it is cached already. Written
 * under a temporary name and renamed, so that a run cut short never leaves half a clip behind.
 */
async function encodeOnce(file: string, args: string[]): Promise<string> {
  if (existsSync(file)) return file;
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp.webm`;
  try {
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, tmp], ENCODE_TIMEOUT_MS);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
  return file;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} failed (${signal ?? code}): ${err.trim()}`));
    });
  });
}
