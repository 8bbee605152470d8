/**
 * What a plain RTP sender is told: ffmpeg arguments that send exactly what the origin's
 * producers expect (codec, payload type, SSRC, RTP and RTCP ports), and the same as an SDP
 * for other senders (GStreamer, hardware encoders). Shared by the HTTP answer and the CLI.
 */
import { isIPv6 } from 'node:net';
import type { RtpTrackTarget } from './RtpIngestSession.js';

function rtpUrl(t: RtpTrackTarget): string {
  const host = isIPv6(t.ip) ? `[${t.ip}]` : t.ip;
  return `rtp://${host}:${t.rtpPort}?rtcpport=${t.rtcpPort}&pkt_size=1200`;
}

/**
 * ffmpeg output arguments, one RTP output per track (`-an`/`-vn` pick the track, so any input
 * works). Video is encoded with a key frame every 2 s at most: the sender cannot hear key frame
 * requests, so a viewer joining waits for the next one.
 */
export function ffmpegOutputArgs(tracks: readonly RtpTrackTarget[]): string[] {
  return tracks.flatMap((t) => {
    const tail = ['-payload_type', String(t.payloadType), '-ssrc', String(t.ssrc), '-f', 'rtp', rtpUrl(t)];
    if (t.kind === 'audio') return ['-vn', '-c:a', 'libopus', '-b:a', '128k', '-ac', '2', '-ar', '48000', ...tail];
    const keyframes = ['-g', '60', '-keyint_min', '60', '-pix_fmt', 'yuv420p'];
    if (t.codec === 'H264') {
      return ['-an', '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'zerolatency', '-b:v', '2M', ...keyframes, ...tail];
    }
    return ['-an', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '2M', '-error-resilient', '1', '-auto-alt-ref', '0', ...keyframes, ...tail];
  });
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** The whole command for a file (or any ffmpeg input), played at its own pace. */
export function ffmpegCommand(tracks: readonly RtpTrackTarget[], input = 'INPUT'): string {
  return ['ffmpeg', '-re', '-i', input, ...ffmpegOutputArgs(tracks)].map(shellQuote).join(' ');
}

/** An SDP of what to send where (the sender's view: sendonly). */
export function senderSdp(tracks: readonly RtpTrackTarget[], streamId: string): string {
  const ip = tracks[0]?.ip ?? '0.0.0.0';
  const ipVer = isIPv6(ip) ? 'IP6' : 'IP4';
  const lines = ['v=0', `o=- 0 0 IN ${ipVer} ${ip}`, `s=Cascade RTP ingest ${streamId}`, `c=IN ${ipVer} ${ip}`, 't=0 0'];
  for (const t of tracks) {
    const name = t.codec === 'opus' ? 'opus' : t.codec;
    lines.push(
      `m=${t.kind} ${t.rtpPort} RTP/AVP ${t.payloadType}`,
      `a=rtcp:${t.rtcpPort}`,
      `a=rtpmap:${t.payloadType} ${name}/${t.clockRate}${t.channels ? `/${t.channels}` : ''}`,
      ...(t.codec === 'H264' ? [`a=fmtp:${t.payloadType} packetization-mode=1;profile-level-id=42e01f`] : []),
      `a=ssrc:${t.ssrc} cname:cascade-rtp-${t.kind}`,
      'a=sendonly',
    );
  }
  return lines.join('\r\n') + '\r\n';
}
