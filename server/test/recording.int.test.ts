import { setTimeout as delay } from 'node:timers/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  launchChromium,
  startNodeViewer,
  startServer,
  startWeriftWhip,
  waitFor,
  type NodeProcess,
  type NodeViewer,
  type WeriftWhipPublisher,
} from '@cascade/testing';

/**
 * Recordings: a WHIP broadcaster asks for one (?record=1); the origin writes the stream with
 * ffmpeg -c copy; ffprobe reads a duration within a second of the stream's; the replay page
 * seeks with range requests; the broadcaster or the operator deletes it; a disk that fills
 * stops the recording with a log line while viewers keep watching.
 */
interface Recording {
  id: string;
  streamId: string;
  state: string;
  reason?: string;
  bytes: number;
  durationMs?: number;
  file: string;
  url: string;
  replay: string;
  mimeType: string;
}

const token = (sub: string) => issueToken({ scope: ['broadcast'], sub });
const stops: { stop(): unknown }[] = [];
let dir: string;

async function recordingOf(origin: NodeProcess, streamId: string, state?: string): Promise<Recording> {
  return waitFor(
    async () => {
      const { body } = await getJson<{ recordings: Recording[] }>(`${origin.url}/api/recordings`);
      const r = body.recordings.find((x) => x.streamId === streamId);
      return r && (!state || r.state === state) ? r : undefined;
    },
    { what: `a ${state ?? ''} recording of ${streamId}`, timeoutMs: 30_000 },
  );
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cascade-rec-'));
});
afterAll(async () => {
  for (const s of stops) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a recorded stream', () => {
  let origin: NodeProcess;
  let browser: Browser;
  let rec: Recording;
  let streamSeconds = 0;

  beforeAll(async () => {
    origin = await startServer({ env: { CASCADE_RECORDING_ENABLED: 'true', CASCADE_RECORDING_DIR: path.join(dir, 'main') } });
    stops.push(origin);
    browser = await launchChromium();
    stops.push({ stop: () => browser.close() });
  });

  it('20 s of a WHIP stream give a file ffprobe reads with a duration within a second of it', async () => {
    const pub: WeriftWhipPublisher = await startWeriftWhip(`${origin.url}/whip?record=1`, token('recorder'));
    stops.push(pub);
    expect(pub.response.status).toBe(201);
    expect(pub.response.headers.get('cascade-recording')).toBe('started');
    // Media flows from the moment DTLS is up (what werift is handed before is dropped).
    await waitFor(() => pub.pc.connectionState === 'connected' && pub.packetsSent > 0, { what: 'media to flow', intervalMs: 20 });
    const firstPacket = Date.now();
    await delay(20_000);
    const del = pub.delete();
    const lastPacket = Date.now();
    expect((await del).status).toBe(200);
    streamSeconds = (lastPacket - firstPacket) / 1000;
    rec = await recordingOf(origin, pub.streamId, 'complete');
    expect(rec.reason).toBe('stream ended');
    expect(rec.mimeType).toBe('video/webm');
    const probed = JSON.parse(
      execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', path.join(dir, 'main', rec.file)]).toString(),
    ) as { format: { duration: string }; streams: { codec_name: string }[] };
    expect(probed.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    expect(Math.abs(Number(probed.format.duration) - streamSeconds), `file ${probed.format.duration} s, stream ${streamSeconds} s`).toBeLessThan(1);
    expect(Math.abs(rec.durationMs! / 1000 - streamSeconds)).toBeLessThan(1);
  });

  it('the file is served with range requests', async () => {
    const res = await fetch(`${origin.url}${rec.url}`, { headers: { Range: 'bytes=100-1099' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 100-1099/${rec.bytes}`);
    expect(res.headers.get('content-type')).toBe('video/webm');
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it('the replay page plays it and seeks', async () => {
    const page = await (await browser.newContext()).newPage();
    stops.push({ stop: () => page.context().close() });
    const ranges: number[] = [];
    page.on('response', (r) => r.url().endsWith(rec.url) && ranges.push(r.status()));
    await page.goto(`${origin.url}${rec.replay}`);
    await waitFor(() => page.evaluate(() => (window as unknown as { cascadeDemo: { state: string } }).cascadeDemo.state === 'ready'), { what: 'the replay page to load the recording' });
    const duration = await page.evaluate(() => (window as unknown as { cascadeReplay: { video: HTMLVideoElement } }).cascadeReplay.video.duration);
    expect(Math.abs(duration - streamSeconds)).toBeLessThan(1);
    const after = await page.evaluate(async () => {
      const v = (window as unknown as { cascadeReplay: { video: HTMLVideoElement } }).cascadeReplay.video;
      v.muted = true;
      await new Promise<void>((resolve) => {
        v.addEventListener('seeked', () => resolve(), { once: true });
        v.currentTime = 15;
      });
      const frames = v.getVideoPlaybackQuality().totalVideoFrames;
      await v.play();
      return { at: v.currentTime, frames };
    });
    expect(after.at).toBeGreaterThanOrEqual(14);
    // It plays on from there: time and decoded frames go on.
    await waitFor(
      () =>
        page.evaluate((f) => {
          const v = (window as unknown as { cascadeReplay: { video: HTMLVideoElement } }).cascadeReplay.video;
          return v.currentTime > 15.5 && v.getVideoPlaybackQuality().totalVideoFrames > f + 5;
        }, after.frames),
      { what: 'playback after the seek' },
    );
    expect(ranges).toContain(206);
  });

  it('is listed, and deleted by the operator, not by another broadcaster', async () => {
    const { body } = await getJson<{ enabled: boolean; recordings: Recording[] }>(`${origin.url}/api/recordings`);
    expect(body.enabled).toBe(true);
    expect(body.recordings.map((r) => r.id)).toContain(rec.id);
    const del = (t: string) => fetch(`${origin.url}/api/recordings/${rec.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${t}` } });
    expect((await del(token('mallory'))).status).toBe(403);
    expect((await del(issueToken({ scope: ['operator'], sub: 'operator' }))).status).toBe(200);
    expect((await getJson<{ code: string }>(`${origin.url}${rec.url}`)).body.code).toBe('CASCADE_ERR_RECORDING_NOT_FOUND');
  });

  it('a broadcaster starts and stops recording a live stream over HTTP; nobody else may', async () => {
    const pub = await startWeriftWhip(`${origin.url}/whip`, token('api-user'));
    stops.push(pub);
    const url = `${origin.url}/api/streams/${pub.streamId}/recording`;
    const as = (t: string, method: string) => fetch(url, { method, headers: { Authorization: `Bearer ${t}` } });
    expect((await as(token('mallory'), 'POST')).status).toBe(403);
    expect((await as(token('api-user'), 'POST')).status).toBe(201);
    const r = await recordingOf(origin, pub.streamId, 'recording');
    await delay(3000);
    expect((await as(token('api-user'), 'DELETE')).status).toBe(200);
    const done = await recordingOf(origin, pub.streamId, 'complete');
    expect(done.id).toBe(r.id);
    expect(done.bytes).toBeGreaterThan(0);
    // The stream itself goes on.
    expect((await getJson<{ state: string }>(`${origin.url}/api/streams/${pub.streamId}`)).body.state).toBe('live');
    // The broadcaster deletes its own recording.
    const del = await fetch(`${origin.url}/api/recordings/${done.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token('api-user')}` } });
    expect(del.status).toBe(200);
    await pub.delete();
  });
});

// Mounting a tmpfs takes root (the CI machine and this one run tests as root).
describe.skipIf(process.getuid?.() !== 0)('a full disk', () => {
  let origin: NodeProcess;
  let mount: string;
  let viewer: NodeViewer;

  beforeAll(async () => {
    mount = path.join(dir, 'small');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', mount]);
    origin = await startServer({ env: { CASCADE_RECORDING_ENABLED: 'true', CASCADE_RECORDING_DIR: mount, CASCADE_RECORDING_MIN_FREE_BYTES: '0' } });
  });
  afterAll(async () => {
    viewer?.stop();
    await origin?.stop();
    spawnSync('umount', [mount]);
  });

  it('stops the recording with a log line while viewers keep playing', async () => {
    const pub = await startWeriftWhip(`${origin.url}/whip?record=1`, token('filler'));
    stops.push(pub);
    viewer = await startNodeViewer(origin.url, pub.streamId);
    const rec = await recordingOf(origin, pub.streamId, 'stopped');
    expect(rec.reason).toBe('disk full');
    expect(origin.logs.some((l) => l.includes('recording stopped: the recordings disk is full'))).toBe(true);
    const frames = viewer.counters.frames;
    await waitFor(() => viewer.counters.frames > frames + 30, { what: 'the viewer to keep receiving frames' });
    expect((await getJson<{ state: string }>(`${origin.url}/api/streams/${pub.streamId}`)).body.state).toBe('live');
    await pub.delete();
  });
});
