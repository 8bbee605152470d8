import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import * as werift from 'werift';
import { waitFor } from './wait.js';

export interface WhipResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** POST an SDP offer to a WHIP endpoint (what any WHIP client does first). */
export async function whipPost(endpoint: string, sdp: string, token?: string, contentType = 'application/sdp'): Promise<WhipResponse> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'Content-Type': contentType, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: sdp,
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** A WHIP request to a session URL (DELETE, PATCH…), resolved against the endpoint as a client would. */
export async function whipRequest(endpoint: string, location: string, init: RequestInit & { token?: string }): Promise<WhipResponse> {
  const { token, headers, ...rest } = init;
  const res = await fetch(new URL(location, endpoint), {
    ...rest,
    headers: { ...(headers as Record<string, string>), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

export interface WeriftWhipPublisher {
  pc: werift.RTCPeerConnection;
  /** The answer to the POST (201 with the SDP answer, Location, ETag…), or the refusal. */
  response: WhipResponse;
  /** Session URL as the server wrote it (relative to the endpoint). */
  location: string;
  streamId: string;
  /** RTP packets handed to the peer connection so far. */
  readonly packetsSent: number;
  /** DELETE the session (the stream ends). */
  delete(token?: string): Promise<WhipResponse>;
  /** Stop sending and close the peer connection without a DELETE: a broadcaster that crashed. */
  stop(): Promise<void>;
}

/**
 * A WHIP client Cascade did not write: werift's RTCPeerConnection offers VP8 (and Opus), POSTs
 * the offer, applies the answer and sends what ffmpeg encodes live (a small test pattern and a
 * tone, one key frame a second), so there is real media to watch.
 */
export async function startWeriftWhip(endpoint: string, token: string, options: { audio?: boolean; maxDurationSec?: number } = {}): Promise<WeriftWhipPublisher> {
  const audio = options.audio ?? true;
  const pc = new werift.RTCPeerConnection({
    bundlePolicy: 'max-bundle',
    codecs: {
      video: [
        new werift.RTCRtpCodecParameters({
          mimeType: 'video/VP8',
          clockRate: 90000,
          payloadType: 96,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        }),
      ],
      audio: [new werift.RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
    },
  });
  const tracks: werift.MediaStreamTrack[] = [];
  const feeds: { kind: 'audio' | 'video'; track: werift.MediaStreamTrack }[] = [];
  for (const kind of audio ? (['audio', 'video'] as const) : (['video'] as const)) {
    const track = new werift.MediaStreamTrack({ kind });
    tracks.push(track);
    feeds.push({ kind, track });
    pc.addTransceiver(track, { direction: 'sendonly' });
  }
  await pc.setLocalDescription(await pc.createOffer());
  await waitFor(() => pc.iceGatheringState === 'complete', { what: 'werift ICE gathering', timeoutMs: 10_000, intervalMs: 20 });
  const response = await whipPost(endpoint, pc.localDescription!.sdp, token);
  const sockets: dgram.Socket[] = [];
  const procs: ChildProcess[] = [];
  let packets = 0;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of procs) p.kill('SIGKILL');
    for (const s of sockets) s.close();
    await pc.close().catch(() => {});
  };
  if (response.status !== 201) {
    await stop();
    return {
      pc,
      response,
      location: '',
      streamId: '',
      packetsSent: 0,
      delete: () => Promise.reject(new Error('not published')),
      stop,
    };
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: response.body });
  for (const { kind, track } of feeds) {
    const socket = dgram.createSocket('udp4');
    sockets.push(socket);
    // A fresh packet per datagram: writeRtp rewrites the one it is given.
    socket.on('message', (buf) => {
      packets++;
      track.writeRtp(werift.RtpPacket.deSerialize(buf));
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const port = socket.address().port;
    // prettier-ignore
    const args = kind === 'video'
      ? ['-re', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=15', '-c:v', 'libvpx', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8',
        '-g', '15', '-keyint_min', '15', '-error-resilient', '1', '-auto-alt-ref', '0', '-pix_fmt', 'yuv420p', '-payload_type', '96']
      : ['-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-c:a', 'libopus', '-b:a', '32k', '-ac', '2', '-ar', '48000', '-payload_type', '111'];
    const ff = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args, '-t', String(options.maxDurationSec ?? 300), '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    ff.on('error', () => {});
    procs.push(ff);
  }
  process.once('exit', () => procs.forEach((p) => p.kill('SIGKILL')));
  const location = response.headers.get('location') ?? '';
  return {
    pc,
    response,
    location,
    streamId: response.headers.get('cascade-stream-id') ?? '',
    get packetsSent() {
      return packets;
    },
    delete: (t = token) => whipRequest(endpoint, location, { method: 'DELETE', token: t }),
    stop,
  };
}
