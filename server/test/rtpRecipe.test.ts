import { describe, expect, it } from 'vitest';
import type { RtpTrackTarget } from '../src/ingest/RtpIngestSession.js';
import { ffmpegCommand, ffmpegOutputArgs, senderSdp } from '../src/ingest/rtpRecipe.js';

const video: RtpTrackTarget = { kind: 'video', codec: 'H264', ip: '203.0.113.10', rtpPort: 40002, rtcpPort: 40003, payloadType: 96, ssrc: 1111, clockRate: 90000 };
const audio: RtpTrackTarget = { kind: 'audio', codec: 'opus', ip: '203.0.113.10', rtpPort: 40010, rtcpPort: 40011, payloadType: 111, ssrc: 2222, clockRate: 48000, channels: 2 };

describe('RTP ingest recipe', () => {
  it('one RTP output per track with the payload type, SSRC and RTCP port the producer expects', () => {
    const args = ffmpegOutputArgs([video, audio]);
    const [v, a] = [args.slice(0, args.indexOf('-vn')), args.slice(args.indexOf('-vn'))];
    expect(v).toEqual(expect.arrayContaining(['-an', 'libx264', 'baseline']));
    expect(v.slice(-7)).toEqual(['-payload_type', '96', '-ssrc', '1111', '-f', 'rtp', 'rtp://203.0.113.10:40002?rtcpport=40003&pkt_size=1200']);
    expect(a).toEqual(expect.arrayContaining(['-vn', 'libopus', '-ac', '2', '-ar', '48000']));
    expect(a.slice(-7)).toEqual(['-payload_type', '111', '-ssrc', '2222', '-f', 'rtp', 'rtp://203.0.113.10:40010?rtcpport=40011&pkt_size=1200']);
    expect(ffmpegOutputArgs([{ ...video, codec: 'VP8' }])).toEqual(expect.arrayContaining(['libvpx', '-error-resilient', '1']));
  });

  it('a command a shell runs as is (URLs quoted)', () => {
    expect(ffmpegCommand([audio], 'my file.mp4')).toBe(
      "ffmpeg -re -i 'my file.mp4' -vn -c:a libopus -b:a 128k -ac 2 -ar 48000 -payload_type 111 -ssrc 2222 -f rtp 'rtp://203.0.113.10:40010?rtcpport=40011&pkt_size=1200'",
    );
  });

  it('an SDP of the same, IPv6 included', () => {
    const sdp = senderSdp([{ ...video, ip: '2001:db8::10' }], 'abc123');
    expect(sdp.split('\r\n')).toEqual(
      expect.arrayContaining(['c=IN IP6 2001:db8::10', 'm=video 40002 RTP/AVP 96', 'a=rtcp:40003', 'a=rtpmap:96 H264/90000', 'a=ssrc:1111 cname:cascade-rtp-video']),
    );
    expect(ffmpegOutputArgs([{ ...audio, ip: '2001:db8::10' }]).at(-1)).toBe('rtp://[2001:db8::10]:40010?rtcpport=40011&pkt_size=1200');
  });
});
