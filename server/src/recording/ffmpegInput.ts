/**
 * How a recording is written: the SDP that tells ffmpeg what arrives on which local port (the
 * recorder's consumers, as mediasoup sends them), and the container that takes the codecs as
 * they are (`-c copy`): WebM for VP8 and Opus, fragmented MP4 for H.264 (every fragment is
 * playable, even if the origin dies mid-recording).
 */
import type { types } from 'mediasoup';

export interface RecordedTrack {
  kind: 'audio' | 'video';
  /** Local UDP port ffmpeg listens on for RTP (RTCP on port + 1). */
  port: number;
  rtpParameters: types.RtpParameters;
}

export interface Container {
  ext: 'webm' | 'mp4';
  mimeType: 'video/webm' | 'video/mp4' | 'audio/webm';
  /** ffmpeg output options before the file name. */
  args: string[];
}

function fmtp(parameters: Record<string, unknown> | undefined): string {
  return Object.entries(parameters ?? {})
    .filter(([k]) => !k.startsWith('x-google'))
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(';');
}

/** An SDP ffmpeg reads (`-protocol_whitelist file,udp,rtp -i rec.sdp`) to receive the tracks on loopback. */
export function ffmpegInputSdp(tracks: readonly RecordedTrack[]): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=Cascade recording', 'c=IN IP4 127.0.0.1', 't=0 0'];
  for (const t of tracks) {
    const codec = t.rtpParameters.codecs[0]!;
    const name = codec.mimeType.slice(codec.mimeType.indexOf('/') + 1);
    const pt = codec.payloadType;
    lines.push(`m=${t.kind} ${t.port} RTP/AVP ${pt}`, `a=rtpmap:${pt} ${name}/${codec.clockRate}${codec.channels && codec.channels > 1 ? `/${codec.channels}` : ''}`);
    const f = fmtp(codec.parameters);
    if (f) lines.push(`a=fmtp:${pt} ${f}`);
    lines.push('a=recvonly');
  }
  return lines.join('\r\n') + '\r\n';
}

/**
 * What the recorder's consumers ask for: every codec the router has, without RTX and without
 * any feedback or header extension. ffmpeg sends no NACK, and with no bandwidth estimation
 * mediasoup sends no probation packets (padding on another SSRC) that ffmpeg would take for
 * lost media.
 */
export function recorderCapabilities(router: types.RtpCapabilities): types.RtpCapabilities {
  return {
    codecs: (router.codecs ?? []).filter((c) => !/\/rtx$/i.test(c.mimeType)).map((c) => ({ ...c, rtcpFeedback: [] })),
    headerExtensions: [],
  };
}

/** The container for these tracks: MP4 as soon as there is H.264, WebM otherwise. */
export function containerFor(tracks: readonly RecordedTrack[]): Container {
  const h264 = tracks.some((t) => /\/h264$/i.test(t.rtpParameters.codecs[0]!.mimeType));
  if (h264) return { ext: 'mp4', mimeType: 'video/mp4', args: ['-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof'] };
  const video = tracks.some((t) => t.kind === 'video');
  return { ext: 'webm', mimeType: video ? 'video/webm' : 'audio/webm', args: ['-f', 'webm'] };
}

/** The whole ffmpeg command line: read the SDP, copy every stream, write `out`. */
export function ffmpegArgs(sdpFile: string, container: Container, out: string): string[] {
  // prettier-ignore
  return [
    '-hide_banner', '-loglevel', 'verbose', '-nostdin',
    '-protocol_whitelist', 'file,udp,rtp',
    // Packets wait in ffmpeg's reordering buffer; a little suffices on loopback.
    '-reorder_queue_size', '64',
    '-i', sdpFile,
    '-map', '0', '-c', 'copy',
    // Written as it comes (the muxers would otherwise hold it until the end): a crash or a full disk loses seconds, not the recording.
    '-flush_packets', '1',
    ...container.args,
    '-y', out,
  ];
}
