import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  demoState,
  framesGrow,
  getJson,
  issueToken,
  launchChromium,
  startNodeViewer,
  startServer,
  waitFor,
  watchedVideoCodec,
  type NodeProcess,
  type NodeViewer,
} from '@cascade/testing';

/**
 * Plain RTP ingest for senders without WebRTC: `cascade ingest` and POST /ingest/rtp hand out
 * PlainTransport ports; ffmpeg sends there; viewers decode the stream like any other.
 */
let origin: NodeProcess;
let browser: Browser;
let dir: string;
const procs: ChildProcess[] = [];
const cleanup: { stop(): unknown }[] = [];
const CLI = path.join(REPO_ROOT, 'server/dist/cli.js');
const token = (sub: string) => issueToken({ scope: ['broadcast'], sub });

interface Answer {
  streamId: string;
  session: string;
  tracks: { kind: string; ip: string; rtpPort: number; rtcpPort: number; ssrc: number; payloadType: number }[];
  ffmpeg: string;
  ffmpegOutputArgs: string[];
  sdp: string;
}
async function ask(body: unknown, t?: string, type = 'application/json'): Promise<{ status: number; body: Answer & { code?: string } }> {
  const res = await fetch(`${origin.url}/ingest/rtp`, {
    method: 'POST',
    headers: { 'Content-Type': type, ...(t ? { Authorization: `Bearer ${t}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer & { code?: string } };
}
/** ffmpeg encoding a test pattern (and a tone) live into the given output arguments. */
function ffmpegLive(outputArgs: string[]): ChildProcess {
  // prettier-ignore
  const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '120', ...outputArgs], { stdio: 'ignore' });
  procs.push(p);
  return p;
}
const streamState = async (id: string) => (await getJson<{ state: string }>(`${origin.url}/api/streams/${id}`)).body.state;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cascade-rtp-'));
  origin = await startServer({
    env: {
      CASCADE_RTP_INGEST_ENABLED: 'true',
      CASCADE_WHIP_IDLE_TIMEOUT_MS: '3000',
      CASCADE_RTP_INGEST_START_TIMEOUT_MS: '20000',
      CASCADE_RECORDING_ENABLED: 'true',
      CASCADE_RECORDING_DIR: path.join(dir, 'recordings'),
    },
  });
  browser = await launchChromium();
});
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of cleanup) await c.stop();
  await browser?.close();
  await origin?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cascade ingest', () => {
  it('without --input prints the ffmpeg command and the SDP for the ports it was given', () => {
    const r = spawnSync(process.execPath, [CLI, 'ingest', '--url', origin.url, '--token', token('printer'), '--video', 'h264'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ffmpeg -re -i INPUT -an -c:v libx264 .* -ssrc \d+ -f rtp 'rtp:\/\/[^']+' -vn -c:a libopus .*$/m);
    expect(r.stdout).toMatch(/^m=video \d+ RTP\/AVP 96\r?$/m);
    expect(r.stderr).toMatch(/stream \w+ is ready; viewers watch it at http/);
  });

  it('a bad token: the server’s code and exit status 1', () => {
    const r = spawnSync(process.execPath, [CLI, 'ingest', '--url', origin.url, '--token', 'nonsense'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CASCADE_ERR_AUTH_INVALID_TOKEN');
  });

  it('with --input sends an H.264 file that a Chromium viewer decodes; Ctrl-C ends the stream; --record leaves an MP4', async () => {
    const file = path.join(dir, 'clip.mp4');
    // prettier-ignore
    const made = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=330',
      '-t', '4', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file], { timeout: 60_000 });
    expect(made.status).toBe(0);
    const cli = spawn(process.execPath, [CLI, 'ingest', '--url', origin.url, '--token', token('filer'), '--video', 'h264', '--input', file, '--loop', '--title', 'From a file', '--record'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(cli);
    let err = '';
    cli.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const streamId = await waitFor(() => /stream (\w+) is ready/.exec(err)?.[1], { what: 'the CLI to get its ports' });
    const page: Page = await (await browser.newContext()).newPage();
    cleanup.push({ stop: () => page.context().close() });
    await page.goto(`${origin.url}/watch/${streamId}`);
    await framesGrow(page, 20, 60_000);
    expect(await watchedVideoCodec(page)).toBe('video/H264');
    expect((await getJson<{ title: string }>(`${origin.url}/api/streams/${streamId}`)).body.title).toBe('From a file');
    cli.kill('SIGINT');
    const code = await new Promise((r) => cli.once('exit', r));
    expect(code).toBe(0);
    expect(err).toContain(`stream ${streamId} ended`);
    await waitFor(async () => (await demoState(page)).state === 'ended', { what: 'the viewer to read ended' });
    expect(err).toContain('recording: started');
    const rec = await waitFor(async () => {
      const { body } = await getJson<{ recordings: { streamId: string; state: string; file: string; mimeType: string }[] }>(`${origin.url}/api/recordings`);
      return body.recordings.find((r) => r.streamId === streamId && r.state === 'complete');
    }, { what: 'the recording to be complete' });
    expect(rec.mimeType).toBe('video/mp4');
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', path.join(dir, 'recordings', rec.file)], { encoding: 'utf8' });
    const probed = JSON.parse(probe.stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
    expect(probed.streams.map((s) => s.codec_name).sort()).toEqual(['h264', 'opus']);
    expect(Number(probed.format.duration)).toBeGreaterThan(3);
  });
});

describe('POST /ingest/rtp', () => {
  let viewer: NodeViewer;
  let answer: Answer;

  it('hands out ports, SSRCs and payload types; ffmpeg sending there is watched', async () => {
    const r = await ask({ video: 'vp8', audio: true }, token('vp8er'));
    expect(r.status).toBe(201);
    answer = r.body;
    expect(answer.tracks.map((t) => t.kind)).toEqual(['video', 'audio']);
    for (const t of answer.tracks) expect(t.rtpPort).not.toBe(t.rtcpPort);
    ffmpegLive(answer.ffmpegOutputArgs);
    viewer = await startNodeViewer(origin.url, answer.streamId);
    cleanup.push(viewer);
    const start = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames > start + 20 && viewer.counters.keyframes > 0, { what: 'frames from ffmpeg', timeoutMs: 30_000 });
    expect(await streamState(answer.streamId)).toBe('live');
  });

  it('ffmpeg sending the wrong SSRC gets a log line saying what to send; the other stream plays on', async () => {
    const r = await ask({ video: 'vp8', audio: false }, token('wrongssrc'));
    expect(r.status).toBe(201);
    const args = r.body.ffmpegOutputArgs.map((a, i, all) => (all[i - 1] === '-ssrc' ? '1234' : a));
    ffmpegLive(args);
    await waitFor(() => origin.logs.some((l) => l.includes('match no track') && l.includes(`"streamId":"${r.body.streamId}"`)), {
      what: 'the diagnostic log line',
      timeoutMs: 30_000,
    });
    const start = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames > start + 15, { what: 'the first stream to keep playing' });
  });

  it('a sender that stops leaves the stream reconnecting', async () => {
    const r = await ask({ video: 'vp8', audio: false }, token('stopper'));
    const ff = ffmpegLive(r.body.ffmpegOutputArgs);
    await waitFor(async () => origin.logs.some((l) => l.includes('RTP ingest: sender found') && l.includes(r.body.streamId)), { what: 'the sender' });
    ff.kill('SIGKILL');
    await waitFor(async () => (await streamState(r.body.streamId)) === 'reconnecting', { what: 'the stream to wait for its sender', timeoutMs: 30_000 });
  });

  it('refuses bad requests with their codes', async () => {
    expect(await ask({ video: 'vp8' })).toMatchObject({ status: 401, body: { code: 'CASCADE_ERR_AUTH_MISSING_TOKEN' } });
    expect(await ask({ video: 'vp9' }, token('x'))).toMatchObject({ status: 400, body: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await ask({ video: 'none', audio: false }, token('x'))).toMatchObject({ status: 400, body: { code: 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS' } });
    expect(await ask('{"video":', token('x'))).toMatchObject({ status: 400, body: { code: 'CASCADE_ERR_PROTOCOL_MALFORMED' } });
    expect(await ask('video=vp8', token('x'), 'application/x-www-form-urlencoded')).toMatchObject({ status: 415, body: { code: 'CASCADE_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE' } });
    const del = await fetch(`${origin.url}${answer.session}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token('mallory')}` } });
    expect(del.status).toBe(403);
    expect(await streamState(answer.streamId)).toBe('live');
    const mine = await fetch(`${origin.url}${answer.session}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token('vp8er')}` } });
    expect(mine.status).toBe(200);
    await waitFor(() => viewer.counters.ended, { what: 'the viewer to learn the stream ended' });
  });
});
