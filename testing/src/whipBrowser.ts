import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { waitFor } from './wait.js';

/**
 * An empty page on its own loopback port: another origin than the server's, so that a page
 * there reaches WHIP/WHEP only through CORS, as a player or encoder on another site would.
 * (http://127.0.0.1 is a secure context: getUserMedia works there.)
 */
export async function startForeignOrigin(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>elsewhere</title><video id="video" autoplay playsinline muted></video>'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface BrowserWhipPublisher {
  page: Page;
  status: number;
  /** Response headers the page could read (CORS exposes them). */
  headers: Record<string, string | null>;
  body: string;
  streamId: string;
  /** DELETE the session from the page (a cross-origin request with a preflight). */
  delete(): Promise<number>;
  /** The codec the page's sender negotiated, e.g. video/H264. */
  videoCodec(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Chromium's own RTCPeerConnection as a WHIP client, in a page on `pageOrigin`: fake camera
 * and microphone, video limited to `codec` (setCodecPreferences), optional simulcast (three
 * RIDs, lowest first), the offer POSTed after ICE gathering, the answer applied.
 */
export async function startChromiumWhip(
  browser: Browser,
  pageOrigin: string,
  endpoint: string,
  token: string,
  options: { codec?: 'VP8' | 'H264'; simulcast?: boolean; height?: number } = {},
): Promise<BrowserWhipPublisher> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(pageOrigin);
  const r = await page.evaluate(
    async ({ endpoint, token, codec, simulcast, height }) => {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { height, frameRate: 15 } });
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      (window as unknown as { pc: RTCPeerConnection }).pc = pc;
      pc.addTransceiver(media.getAudioTracks()[0]!, { direction: 'sendonly', streams: [media] });
      const video = pc.addTransceiver(media.getVideoTracks()[0]!, {
        direction: 'sendonly',
        streams: [media],
        ...(simulcast
          ? { sendEncodings: [{ rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' }] }
          : {}),
      });
      const caps = RTCRtpSender.getCapabilities('video')!.codecs;
      const wanted = caps.filter((c) =>
        codec === 'H264'
          ? c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? '') && /profile-level-id=42e01f/.test(c.sdpFmtpLine ?? '')
          : c.mimeType === 'video/VP8',
      );
      video.setCodecPreferences([...wanted, ...caps.filter((c) => c.mimeType === 'video/rtx')]);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 3000);
      });
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: pc.localDescription!.sdp,
      });
      const body = await res.text();
      const headers: Record<string, string | null> = {};
      for (const h of ['location', 'etag', 'link', 'cascade-stream-id', 'content-type']) headers[h] = res.headers.get(h);
      if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: body });
      (window as unknown as { whip: { location: string | null } }).whip = { location: res.headers.get('location') };
      return { status: res.status, headers, body };
    },
    { endpoint, token, codec: options.codec ?? 'VP8', simulcast: options.simulcast ?? false, height: options.height ?? 360 },
  );
  if (r.status === 201) {
    await waitFor(() => page.evaluate(() => (window as unknown as { pc: RTCPeerConnection }).pc.connectionState === 'connected'), {
      what: 'the WHIP peer connection to connect',
    });
  }
  return {
    page,
    status: r.status,
    headers: r.headers,
    body: r.body,
    streamId: r.headers['cascade-stream-id'] ?? '',
    delete: () =>
      page.evaluate(
        async ({ endpoint, token }) => {
          const loc = (window as unknown as { whip: { location: string } }).whip.location;
          const res = await fetch(new URL(loc, endpoint), { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
          return res.status;
        },
        { endpoint, token },
      ),
    videoCodec: () =>
      page.evaluate(async () => {
        const stats = (await (window as unknown as { pc: RTCPeerConnection }).pc.getStats()) as unknown as Map<string, { type: string; kind?: string; codecId?: string; mimeType?: string }>;
        let mime = '';
        stats.forEach((s) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId) mime = stats.get(s.codecId)?.mimeType ?? mime;
        });
        return mime;
      }),
    stop: async () => {
      await page.context().close().catch(() => {});
    },
  };
}

/** The codec a /watch page's video consumer decodes, e.g. video/H264 (empty until it has stats). */
export function watchedVideoCodec(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const w = (window as unknown as { cascadeWatch?: { consumers: { kind: string; getStats(): Promise<Map<string, { type: string; codecId?: string; mimeType?: string }>> }[] } }).cascadeWatch;
    let mime = '';
    for (const c of w?.consumers ?? []) {
      if (c.kind !== 'video') continue;
      const stats = await c.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.codecId) mime = stats.get(s.codecId)?.mimeType ?? mime;
      });
    }
    return mime;
  });
}

export interface BrowserWhepPlayer {
  page: Page;
  status: number;
  headers: Record<string, string | null>;
  body: string;
  /** Frames the page's <video> decoded so far, and the codec it receives. */
  video(): Promise<{ frames: number; codec: string; connection: string }>;
  /** DELETE the session from the page. */
  delete(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Chromium's RTCPeerConnection as a WHEP player (recvonly audio and video) in a page on
 * `pageOrigin`: POSTs its offer to `endpoint`, applies the answer, plays into a <video>.
 */
export async function startChromiumWhep(browser: Browser, pageOrigin: string, endpoint: string, token?: string): Promise<BrowserWhepPlayer> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(pageOrigin);
  const r = await page.evaluate(
    async ({ endpoint, token }) => {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      (window as unknown as { pc: RTCPeerConnection }).pc = pc;
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      const media = new MediaStream();
      pc.addEventListener('track', (e) => {
        media.addTrack(e.track);
        (document.getElementById('video') as HTMLVideoElement).srcObject = media;
      });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 3000);
      });
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: pc.localDescription!.sdp,
      });
      const body = await res.text();
      const headers: Record<string, string | null> = {};
      for (const h of ['location', 'etag', 'link', 'cascade-node-id', 'content-type']) headers[h] = res.headers.get(h);
      (window as unknown as { whep: { location: string | null } }).whep = { location: res.headers.get('location') };
      if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: body });
      return { status: res.status, headers, body };
    },
    { endpoint, token },
  );
  return {
    page,
    status: r.status,
    headers: r.headers,
    body: r.body,
    video: () =>
      page.evaluate(async () => {
        const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
        const stats = (await pc.getStats()) as unknown as Map<string, { type: string; kind?: string; codecId?: string; mimeType?: string; framesDecoded?: number }>;
        let frames = 0;
        let codec = '';
        stats.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            frames += s.framesDecoded ?? 0;
            if (s.codecId) codec = stats.get(s.codecId)?.mimeType ?? codec;
          }
        });
        return { frames, codec, connection: pc.connectionState };
      }),
    delete: () =>
      page.evaluate(async ({ endpoint }) => {
        const loc = (window as unknown as { whep: { location: string } }).whep.location;
        return (await fetch(new URL(loc, endpoint), { method: 'DELETE' })).status;
      }, { endpoint }),
    stop: async () => {
      await page.context().close().catch(() => {});
    },
  };
}
