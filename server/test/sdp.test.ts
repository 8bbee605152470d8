import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as sdpTransform from 'sdp-transform';
import type { types } from 'mediasoup';
import { describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from '@cascade/sfu';
import { buildAnswer, type LocalTransport } from '../src/sdp/answer.js';
import { ingestTracks } from '../src/sdp/ingest.js';
import { parseOffer, parseSdpFragment } from '../src/sdp/offer.js';

/** The router's capabilities exactly as a router built from MEDIA_CODECS has them (mediasoup's own function, no worker). */
const ortc = createRequire(import.meta.url)('mediasoup/node/lib/ortc.js') as {
  generateRouterRtpCapabilities(codecs: types.RtpCodecCapability[]): types.RtpCapabilities;
};
const CAPS = ortc.generateRouterRtpCapabilities(MEDIA_CODECS);

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const CHROME = fixture('chrome-whip-offer.sdp');
const CHROME_SIMULCAST = fixture('chrome-whip-simulcast-offer.sdp');
const CHROME_WHEP = fixture('chrome-whep-offer.sdp');
const OBS = fixture('obs-whip-offer.sdp');

const LOCAL: LocalTransport = {
  iceParameters: { usernameFragment: 'srvufrag', password: 'srvpassword0123456789' },
  iceCandidates: [
    { foundation: 'udpcandidate', priority: 1076302079, ip: '203.0.113.10', protocol: 'udp', port: 40001, type: 'host' },
    { foundation: 'tcpcandidate', priority: 1076276479, ip: '203.0.113.10', protocol: 'tcp', port: 40002, type: 'host', tcpType: 'passive' },
  ],
  dtlsParameters: {
    fingerprints: [
      { algorithm: 'sha-1', value: 'AA:BB' },
      { algorithm: 'sha-256', value: 'CC:DD' },
    ],
  },
};

/** Keep only the listed payload types on the video m= line of a Chrome offer (its other lines stay, as harmless noise). */
function onlyVideoPayloads(sdp: string, pts: number[]): string {
  return sdp.replace(/^(m=video \d+ \S+) [\d ]+$/m, `$1 ${pts.join(' ')}`);
}

describe('parseOffer()', () => {
  it('reads a browser offer: ICE, DTLS, BUNDLE, and per section codecs, SSRCs and extensions', () => {
    const o = parseOffer(CHROME);
    expect(o.setup).toBe('actpass');
    expect(o.ice.usernameFragment).toMatch(/^\S{4,}$/);
    expect(o.fingerprints[0]!.algorithm).toBe('sha-256');
    expect(o.bundle).toEqual(['0', '1']);
    expect(o.sections.map((s) => [s.kind, s.mid, s.direction])).toEqual([
      ['audio', '0', 'sendonly'],
      ['video', '1', 'sendonly'],
    ]);
    expect(o.sections[1]!.codecs.find((c) => c.payloadType === 108)).toMatchObject({
      mimeType: 'video/H264',
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' },
    });
  });

  it('reads ICE and DTLS attributes written at session level (libdatachannel, as OBS sends them)', () => {
    const o = parseOffer(OBS);
    expect(o.ice).toEqual({ usernameFragment: 'Ugy7', password: '4a2ImNzX+HgIy5DcZ8/rE6' });
    expect(o.sections[1]!.ssrcs).toEqual([{ id: 5000, cname: 'video' }]);
  });

  it('refuses what is not an SDP offer with CASCADE_ERR_SDP_INVALID', () => {
    const invalid = { code: 'CASCADE_ERR_SDP_INVALID' };
    expect(() => parseOffer('hello, world')).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer('{"sdp":"v=0"}')).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n')).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer(CHROME.replace(/^a=ice-(ufrag|pwd):.*\r\n/gm, ''))).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer(CHROME.replace(/^a=fingerprint:.*\r\n/gm, ''))).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer(CHROME.replace(/^a=mid:1\r\n/m, ''))).toThrow(expect.objectContaining(invalid));
    expect(() => parseOffer(CHROME.replace(/^a=setup:actpass/gm, 'a=setup:holdconn'))).toThrow(expect.objectContaining(invalid));
  });

  it('refuses sections outside one BUNDLE group with CASCADE_ERR_SDP_UNSUPPORTED', () => {
    expect(() => parseOffer(CHROME.replace(/^a=group:BUNDLE.*\r\n/m, ''))).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_SDP_UNSUPPORTED' }));
  });

  it('reads trickle-ice-sdpfrag bodies', () => {
    expect(parseSdpFragment('a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n')).toEqual({
      usernameFragment: 'abcd',
      password: 'efghijklmnopqrstuvwxyz12',
    });
    expect(parseSdpFragment('a=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n')).toEqual({});
    expect(() => parseSdpFragment('nothing here')).toThrow(expect.objectContaining({ code: 'CASCADE_ERR_SDP_INVALID' }));
  });
});

describe('ingestTracks()', () => {
  it('maps a browser offer to Opus and VP8 producers with the offerer’s payload types, SSRCs, RTX and extensions', () => {
    const [audio, video] = ingestTracks(parseOffer(CHROME), CAPS);
    expect(audio!.kind).toBe('audio');
    expect(audio!.rtpParameters.codecs).toEqual([expect.objectContaining({ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 })]);
    expect(audio!.rtpParameters.encodings).toEqual([{ ssrc: expect.any(Number) }]);
    expect(audio!.rtpParameters.headerExtensions!.map((e) => e.uri)).toContain('urn:ietf:params:rtp-hdrext:ssrc-audio-level');
    expect(video!.rtpParameters.codecs.map((c) => [c.mimeType, c.payloadType])).toEqual([
      ['video/VP8', 96],
      ['video/rtx', 97],
    ]);
    expect(video!.rtpParameters.codecs[0]!.rtcpFeedback).toEqual(
      expect.arrayContaining([{ type: 'nack', parameter: 'pli' }, { type: 'transport-cc', parameter: '' }]),
    );
    const enc = video!.rtpParameters.encodings![0]!;
    expect(enc.ssrc).toEqual(expect.any(Number));
    expect(enc.rtx?.ssrc).toEqual(expect.any(Number));
    expect(enc.rtx!.ssrc).not.toBe(enc.ssrc);
    // Extensions the router does not know (dependency descriptor, video-layers-allocation) are dropped.
    const uris = video!.rtpParameters.headerExtensions!.map((e) => e.uri);
    expect(uris).toContain('urn:ietf:params:rtp-hdrext:sdes:mid');
    expect(uris.some((u) => u.includes('dependency-descriptor'))).toBe(false);
    expect(video!.rtpParameters.rtcp).toMatchObject({ mux: true, reducedSize: true, cname: expect.any(String) });
  });

  it('takes H.264 Constrained Baseline with packetization-mode 1, skipping Baseline and mode 0', () => {
    // Chrome lists 42001f (Baseline) first: the router forwards 42e01f only.
    const [, video] = ingestTracks(parseOffer(onlyVideoPayloads(CHROME, [102, 103, 104, 107, 108, 109])), CAPS);
    expect(video!.rtpParameters.codecs.map((c) => [c.mimeType, c.payloadType, c.parameters?.apt])).toEqual([
      ['video/H264', 108, undefined],
      ['video/rtx', 109, 108],
    ]);
  });

  it('maps what OBS sends (H.264 and Opus, session-level ICE, no RTX)', () => {
    const tracks = ingestTracks(parseOffer(OBS), CAPS);
    expect(tracks.map((t) => [t.kind, t.rtpParameters.codecs[0]!.mimeType, t.rtpParameters.encodings])).toEqual([
      ['audio', 'audio/opus', [{ ssrc: 5002 }]],
      ['video', 'video/H264', [{ ssrc: 5000 }]],
    ]);
  });

  it('maps simulcast RIDs to encodings, lowest first', () => {
    const [, video] = ingestTracks(parseOffer(CHROME_SIMULCAST), CAPS);
    expect(video!.rtpParameters.encodings).toEqual([{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }]);
    expect(video!.answer.simulcastRids).toEqual(['q', 'h', 'f']);
    // Size restrictions, when every RID has one, decide the order.
    const sized = CHROME_SIMULCAST.replace('a=rid:q send', 'a=rid:q send max-width=320;max-height=180')
      .replace('a=rid:h send', 'a=rid:h send max-width=1280;max-height=720')
      .replace('a=rid:f send', 'a=rid:f send max-width=640;max-height=360');
    expect(ingestTracks(parseOffer(sized), CAPS)[1]!.rtpParameters.encodings).toEqual([{ rid: 'q' }, { rid: 'f' }, { rid: 'h' }]);
  });

  it('refuses with CASCADE_ERR_SDP_UNSUPPORTED rather than answer part of an offer', () => {
    const unsupported = expect.objectContaining({ code: 'CASCADE_ERR_SDP_UNSUPPORTED' });
    // Only codecs the router does not forward.
    expect(() => ingestTracks(parseOffer(onlyVideoPayloads(CHROME, [98, 99, 45])), CAPS)).toThrow(unsupported);
    expect(() => ingestTracks(parseOffer(CHROME.replace(/^m=audio (\d+) (\S+) .*$/m, 'm=audio $1 $2 0 8')), CAPS)).toThrow(unsupported);
    // A viewer's offer sent to WHIP.
    expect(() => ingestTracks(parseOffer(CHROME_WHEP), CAPS)).toThrow(unsupported);
    // Two video tracks.
    const twoVideos = CHROME.replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0 1 2') + CHROME.slice(CHROME.indexOf('m=video')).replace('a=mid:1', 'a=mid:2');
    expect(() => ingestTracks(parseOffer(twoVideos), CAPS)).toThrow(unsupported);
    // No SSRC and no RIDs: the node could not tell the RTP stream.
    expect(() => ingestTracks(parseOffer(OBS.replace(/^a=ssrc:5000 .*\r\n/gm, '')), CAPS)).toThrow(unsupported);
    // No rtcp-mux.
    expect(() => ingestTracks(parseOffer(OBS.replace(/^a=rtcp-mux\r\n/gm, '')), CAPS)).toThrow(unsupported);
    // A data channel.
    const data = 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n';
    expect(() => ingestTracks(parseOffer(CHROME.replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0 1 2') + data), CAPS)).toThrow(unsupported);
  });
});

describe('buildAnswer()', () => {
  it('answers ICE-lite, passive, recvonly, with the offered payload types, candidates and simulcast', () => {
    const offer = parseOffer(CHROME_SIMULCAST);
    const tracks = ingestTracks(offer, CAPS);
    const text = buildAnswer(offer, LOCAL, tracks.map((t) => t.answer), '42');
    const a = sdpTransform.parse(text);
    expect(a.icelite).toBe('ice-lite');
    expect(a.groups).toEqual([{ type: 'BUNDLE', mids: '0 1' }]);
    expect(a.media.map((m) => [m.type, String(m.mid), m.direction, m.setup, String(m.payloads)])).toEqual([
      ['audio', '0', 'recvonly', 'passive', '111'],
      ['video', '1', 'recvonly', 'passive', '96 97'],
    ]);
    const video = a.media[1]!;
    expect(video.iceUfrag).toBe('srvufrag');
    expect(video.fingerprint).toEqual({ type: 'sha-256', hash: 'CC:DD' });
    expect(video.candidates!.map((c) => [c.transport, c.port, c.tcptype])).toEqual([
      ['udp', 40001, undefined],
      ['tcp', 40002, 'passive'],
    ]);
    expect(video.fmtp).toContainEqual({ payload: 97, config: 'apt=96' });
    expect(video.simulcast).toMatchObject({ dir1: 'recv', list1: 'q;h;f' });
    expect(video.rids!.map((r) => [r.id, r.direction])).toEqual([
      ['q', 'recv'],
      ['h', 'recv'],
      ['f', 'recv'],
    ]);
    // Every extension id in the answer was offered with the same URI.
    const offered = new Map(offer.sections[1]!.headerExtensions.map((e) => [e.id, e.uri]));
    for (const e of video.ext ?? []) expect(offered.get(e.value)).toBe(e.uri);
  });

  it('takes the DTLS client role when the offerer can only be a server, and mirrors rejected sections', () => {
    const offer = parseOffer(OBS.replace('a=setup:actpass', 'a=setup:passive').replace(/^m=audio 55120/m, 'm=audio 0'));
    const tracks = ingestTracks(offer, CAPS);
    expect(tracks.map((t) => t.kind)).toEqual(['video']);
    const a = sdpTransform.parse(buildAnswer(offer, LOCAL, tracks.map((t) => t.answer), '1'));
    expect(a.media.map((m) => [m.port, String(m.mid)])).toEqual([
      [0, '0'],
      [9, '1'],
    ]);
    expect(a.media[1]!.setup).toBe('active');
    expect(a.groups!.map((g) => [g.type, String(g.mids)])).toEqual([['BUNDLE', '1']]);
  });
});
