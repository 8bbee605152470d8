import { createRequire } from 'node:module';
import type { types } from 'mediasoup';
import { describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from '../src/mediaCodecs.js';
import { renumbered } from '../src/TransportService.js';

const ortc = createRequire(import.meta.url)('mediasoup/node/lib/ortc.js') as {
  generateRouterRtpCapabilities(codecs: types.RtpCodecCapability[]): types.RtpCapabilities;
};
const CAPS = ortc.generateRouterRtpCapabilities(MEDIA_CODECS);
const media = (CAPS.codecs ?? []).filter((c) => !/rtx/.test(c.mimeType));

describe('renumbered()', () => {
  it('gives the router’s codecs the client’s payload types, leaving out what the client did not number and every RTX', () => {
    const client = { codecs: [{ ...media.find((c) => c.mimeType === 'video/VP8')!, preferredPayloadType: 96 }, { ...media.find((c) => c.mimeType === 'audio/opus')!, preferredPayloadType: 111 }] };
    expect(renumbered(CAPS, client)!.map((c) => [c.mimeType, c.preferredPayloadType])).toEqual([
      ['audio/opus', 111],
      ['video/VP8', 96],
    ]);
  });

  it('is undefined when the client numbers as the router does (the SDK), or names nothing it knows', () => {
    expect(renumbered(CAPS, CAPS)).toBeUndefined();
    expect(renumbered(CAPS, { codecs: [{ kind: 'video', mimeType: 'video/VP9', clockRate: 90000, preferredPayloadType: 98 }] })).toBeUndefined();
  });

  it('matches codecs exactly: another H.264 profile is another codec', () => {
    const h264 = media.find((c) => c.mimeType === 'video/H264')!;
    const other = { ...h264, parameters: { ...h264.parameters, 'profile-level-id': '640032' }, preferredPayloadType: 120 };
    expect(renumbered(CAPS, { codecs: [other] })).toBeUndefined();
  });
});
