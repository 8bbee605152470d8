import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { types } from 'mediasoup';
import { describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from '@cascade/sfu';
import { parseOffer } from '../src/sdp/offer.js';
import { playbackAnswer, playbackSections, viewerCapabilities } from '../src/sdp/playback.js';

const ortc = createRequire(import.meta.url)('mediasoup/node/lib/ortc.js') as {
  generateRouterRtpCapabilities(codecs: types.RtpCodecCapability[]): types.RtpCapabilities;
};
const CAPS = ortc.generateRouterRtpCapabilities(MEDIA_CODECS);
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('WHEP offer mapping', () => {
  const offer = parseOffer(fixture('chrome-whep-offer.sdp'));

  it('the viewer receives with the player’s payload types, without RTX or header extensions', () => {
    const caps = viewerCapabilities(playbackSections(offer), CAPS);
    expect(caps.codecs!.map((c) => [c.mimeType, c.preferredPayloadType])).toEqual([
      ['audio/opus', 111],
      ['video/VP8', 96],
      ['video/H264', 108],
    ]);
    expect(caps.headerExtensions).toEqual([]);
  });

  it('answers each section with its consumer, sending, with the SSRC to tell it by', () => {
    const consumer = {
      id: 'c1',
      producerId: 'p1',
      kind: 'video' as const,
      rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {}, rtcpFeedback: [{ type: 'nack', parameter: 'pli' }] }], encodings: [{ ssrc: 1234 }], rtcp: { cname: 'x', reducedSize: true } },
    };
    const video = offer.sections[1]!;
    expect(playbackAnswer(video, consumer, 's1')).toMatchObject({ mid: '1', direction: 'sendonly', codecs: [{ payloadType: 96 }], headerExtensions: [], send: { ssrc: 1234, cname: 'x' } });
    expect(playbackAnswer(offer.sections[0]!, undefined, 's1')).toBeUndefined();
  });

  it('refuses offers that send or carry data', () => {
    expect(() => playbackSections(parseOffer(fixture('chrome-whip-offer.sdp')))).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_SDP_UNSUPPORTED' }));
  });
});
