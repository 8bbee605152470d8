/**
 * The SDP answer of a media node to a WHIP or WHEP offer: mediasoup's transport (ICE-lite,
 * its candidates, its DTLS fingerprint) and, per m= section of the offer in the same order,
 * what is accepted. Sections the offerer rejected come back rejected.
 */
import * as sdpTransform from 'sdp-transform';
import type { Direction, MediaKind, OfferedSection, ParsedOffer } from './offer.js';

export interface AnswerCodec {
  payloadType: number;
  mimeType: string;
  clockRate: number;
  channels?: number;
  parameters: Record<string, string | number>;
  rtcpFeedback: { type: string; parameter?: string }[];
}

/** What the answer says for one accepted m= section. */
export interface AnswerMedia {
  mid: string;
  kind: MediaKind;
  /** recvonly for WHIP (the node receives), sendonly for WHEP. */
  direction: Exclude<Direction, 'sendrecv'>;
  codecs: AnswerCodec[];
  headerExtensions: { uri: string; id: number }[];
  rtcpRsize: boolean;
  /** WHIP simulcast: the RIDs received, in the offer's order. */
  simulcastRids?: string[];
  /** WHEP: what the node sends, so the client can tie SSRCs to a stream and track. */
  send?: { ssrc: number; rtxSsrc?: number; cname: string; streamId: string; trackId: string };
}

/** mediasoup's WebRtcTransport parameters, as transport.create answers them. */
export interface LocalTransport {
  iceParameters: { usernameFragment: string; password: string };
  iceCandidates: { foundation: string; priority: number; ip: string; protocol: string; port: number; type: string; tcpType?: string }[];
  dtlsParameters: { fingerprints: { algorithm: string; value: string }[] };
}

/** The answerer's DTLS role for the offerer's a=setup: passive (DTLS server) unless the offerer insists on being it. */
export function answerSetup(offer: ParsedOffer): 'active' | 'passive' {
  return offer.setup === 'passive' ? 'active' : 'passive';
}

function codecName(mimeType: string): string {
  return mimeType.slice(mimeType.indexOf('/') + 1);
}

function fmtpLine(parameters: Record<string, string | number>): string {
  return Object.entries(parameters)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

function rejectedSection(s: OfferedSection): sdpTransform.MediaDescription {
  return {
    type: s.type,
    port: 0,
    protocol: s.protocol,
    payloads: s.payloads,
    connection: { version: 4, ip: '0.0.0.0' },
    mid: s.mid,
    direction: 'inactive',
    rtp: [],
    fmtp: [],
  };
}

export function buildAnswer(offer: ParsedOffer, local: LocalTransport, accepted: AnswerMedia[], sessionId: string): string {
  const setup = answerSetup(offer);
  const wanted = offer.fingerprints[0]?.algorithm ?? 'sha-256';
  const fp = local.dtlsParameters.fingerprints.find((f) => f.algorithm === wanted) ?? local.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256') ?? local.dtlsParameters.fingerprints[0]!;
  const candidates = local.iceCandidates.map((c) => ({
    foundation: c.foundation,
    component: 1,
    transport: c.protocol,
    priority: c.priority,
    ip: c.ip,
    port: c.port,
    type: c.type,
    ...(c.tcpType ? { tcptype: c.tcpType } : {}),
  }));
  const byMid = new Map(accepted.map((a) => [a.mid, a]));
  const media = offer.sections.map((s): sdpTransform.MediaDescription => {
    const a = byMid.get(s.mid);
    if (!a || s.rejected) return rejectedSection(s);
    const m: sdpTransform.MediaDescription = {
      type: a.kind,
      port: 9,
      protocol: 'UDP/TLS/RTP/SAVPF',
      payloads: a.codecs.map((c) => c.payloadType).join(' '),
      connection: { version: 4, ip: '0.0.0.0' },
      mid: a.mid,
      direction: a.direction,
      iceUfrag: local.iceParameters.usernameFragment,
      icePwd: local.iceParameters.password,
      fingerprint: { type: fp.algorithm, hash: fp.value },
      setup,
      rtcpMux: 'rtcp-mux',
      ...(a.rtcpRsize ? { rtcpRsize: 'rtcp-rsize' } : {}),
      rtp: a.codecs.map((c) => ({
        payload: c.payloadType,
        codec: codecName(c.mimeType),
        rate: c.clockRate,
        ...(c.channels && c.channels > 1 ? { encoding: c.channels } : {}),
      })),
      fmtp: a.codecs.filter((c) => Object.keys(c.parameters).length > 0).map((c) => ({ payload: c.payloadType, config: fmtpLine(c.parameters) })),
      rtcpFb: a.codecs.flatMap((c) =>
        c.rtcpFeedback.map((f) => ({ payload: c.payloadType, type: f.type, ...(f.parameter ? { subtype: f.parameter } : {}) })),
      ),
      ext: a.headerExtensions.map((e) => ({ value: e.id, uri: e.uri })),
      candidates,
      endOfCandidates: 'end-of-candidates',
    };
    if (a.simulcastRids?.length) {
      m.rids = a.simulcastRids.map((id) => ({ id, direction: 'recv' }));
      m.simulcast = { dir1: 'recv', list1: a.simulcastRids.join(';') };
    }
    if (a.send) {
      const { ssrc, rtxSsrc, cname, streamId, trackId } = a.send;
      m.msid = [{ id: streamId, appdata: trackId }];
      m.ssrcs = [
        { id: ssrc, attribute: 'cname', value: cname },
        ...(rtxSsrc ? [{ id: rtxSsrc, attribute: 'cname', value: cname }] : []),
      ];
      if (rtxSsrc) m.ssrcGroups = [{ semantics: 'FID', ssrcs: `${ssrc} ${rtxSsrc}` }];
    }
    return m;
  });
  const mids = offer.sections.filter((s) => !s.rejected && byMid.has(s.mid)).map((s) => s.mid);
  const session: sdpTransform.SessionDescription = {
    version: 0,
    origin: { username: '-', sessionId, sessionVersion: 1, netType: 'IN', ipVer: 4, address: '0.0.0.0' },
    name: '-',
    timing: { start: 0, stop: 0 },
    icelite: 'ice-lite',
    groups: mids.length ? [{ type: 'BUNDLE', mids: mids.join(' ') }] : [],
    msidSemantic: { semantic: 'WMS', token: '*' },
    media,
  };
  return sdpTransform.write(session);
}
