import { spawn } from 'node:child_process';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@cascade/protocol';
import type { Container } from './ffmpegInput.js';

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.once('error', (e) => resolve({ code: -1, out, err: e.message }));
    p.once('exit', (code) => resolve({ code, out, err }));
  });
}

/** The duration ffprobe reads from a file, ms (undefined if it reads none). */
export async function probeDurationMs(file: string): Promise<number | undefined> {
  const { out } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  const s = Number.parseFloat(out);
  return Number.isFinite(s) ? Math.round(s * 1000) : undefined;
}

/**
 * Rewrite a finished recording once with `-c copy`: the live file may lack its index and
 * duration (ffmpeg, stopped while no packet comes, cannot write its trailer), and a replay
 * needs both to seek. The copy takes a moment and as much disk as the file; if it fails (the
 * disk is full) the original stays, playable from the start.
 */
export async function finalizeRecording(file: string, container: Container, log: Logger): Promise<{ bytes: number; durationMs: number | undefined }> {
  const size = async () => (await stat(file).catch(() => ({ size: 0 }))).size;
  if ((await size()) > 0) {
    const part = path.join(path.dirname(file), `.${path.basename(file)}.part`);
    const fmt = container.ext === 'mp4' ? ['-f', 'mp4', '-movflags', '+faststart'] : ['-f', 'webm'];
    const r = await run('ffmpeg', ['-hide_banner', '-v', 'error', '-nostdin', '-i', file, '-map', '0', '-c', 'copy', ...fmt, '-y', part]);
    if (r.code === 0) await rename(part, file);
    else {
      await rm(part, { force: true });
      log.warn({ file, stderr: r.err.trim().slice(-300) }, 'recording kept as written (could not index it)');
    }
  }
  return { bytes: await size(), durationMs: await probeDurationMs(file) };
}
