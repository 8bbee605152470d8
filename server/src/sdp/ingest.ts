/**
 * WHIP offers → mediasoup producers. For each m= section the client sends: the first offered
 * codec the router carries (the offerer's preference order), its RTX, the feedback and header
 * extensions both sides know, and the encodings (one SSRC, an SSRC simulcast group, or RIDs).
 * What the answer says follows from the same choice, so the two cannot disagree.
 */
import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { CascadeError, MAX_LAYERS } from '@cascade/protocol';
import type { AnswerCodec, AnswerMedia } from './answer.js';
import { commonExtensions, commonFeedback, matchCapability } from './codecs.js';
import type { MediaKind, OfferedSection, ParsedOffer } from './offer.js';

export interface IngestTrack {
  kind: MediaKind;
  /** For producer.create. */
  rtpParameters: types.RtpParameters;
  answer: AnswerMedia;
}

const RID_URI = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';
const unsupported = (detail: string) => new CascadeError('CASCADE_ERR_SDP_UNSUPPORTED', detail);

/** Simulcast RIDs lowest first, as mediasoup wants its encodings: by their size restrictions when all have one, else in the offer's order. */
function orderRids(section: OfferedSection, rids: string[]): string[] {
  const size = (rid: string) => {
    const p = section.rids.find((r) => r.id === rid)?.params ?? {};
    const area = Number(p['max-width']) * Number(p['max-height']);
    return Number.isFinite(area) && area > 0 ? area : Number(p['max-br']) || NaN;
  };
  const sizes = rids.map(size);
  if (sizes.some((s) => Number.isNaN(s))) return rids;
  return [...rids].sort((a, b) => size(a) - size(b));
}

function encodingsOf(section: OfferedSection, extensions: { uri: string }[], withRtx: boolean): types.RtpEncodingParameters[] {
  const sim = section.simulcast;
  if (sim && sim.direction === 'send' && sim.rids.length > 0) {
    if (!extensions.some((e) => e.uri === RID_URI)) throw unsupported(`mid ${section.mid}: simulcast without the rtp-stream-id header extension`);
    if (sim.rids.length > MAX_LAYERS) throw unsupported(`mid ${section.mid}: ${sim.rids.length} simulcast streams; at most ${MAX_LAYERS}`);
    return orderRids(section, sim.rids).map((rid) => ({ rid }));
  }
  const rtxOf = new Map<number, number>();
  for (const g of section.ssrcGroups) if (g.semantics === 'FID' && g.ssrcs.length === 2) rtxOf.set(g.ssrcs[0]!, g.ssrcs[1]!);
  const secondary = new Set(rtxOf.values());
  const simGroup = section.ssrcGroups.find((g) => g.semantics === 'SIM');
  const primaries = simGroup ? simGroup.ssrcs : section.ssrcs.map((s) => s.id).filter((id) => !secondary.has(id)).slice(0, 1);
  if (primaries.length > MAX_LAYERS) throw unsupported(`mid ${section.mid}: ${primaries.length} simulcast streams; at most ${MAX_LAYERS}`);
  if (primaries.length === 0) throw unsupported(`mid ${section.mid}: no a=ssrc and no simulcast RIDs to tell its RTP streams by`);
  return primaries.map((ssrc) => {
    const rtx = rtxOf.get(ssrc);
    return { ssrc, ...(withRtx && rtx ? { rtx: { ssrc: rtx } } : {}) };
  });
}

function ingestTrack(section: OfferedSection, caps: types.RtpCapabilities): IngestTrack {
  const kind = section.kind as MediaKind;
  if (section.direction !== 'sendonly' && section.direction !== 'sendrecv') {
    throw unsupported(`mid ${section.mid} is ${section.direction}: a WHIP client sends media`);
  }
  if (!section.rtcpMux) throw unsupported(`mid ${section.mid}: RTP/RTCP multiplexing (a=rtcp-mux) is required`);
  let chosen: { offered: OfferedSection['codecs'][number]; cap: types.RtpCodecCapability } | undefined;
  for (const offered of section.codecs) {
    const cap = matchCapability(offered, caps);
    if (cap) {
      chosen = { offered, cap };
      break;
    }
  }
  if (!chosen) {
    const names = [...new Set(section.codecs.map((c) => c.mimeType))].join(', ') || 'none';
    throw unsupported(`mid ${section.mid}: no codec Cascade forwards (Opus, VP8, H.264 packetization-mode=1 Constrained Baseline) among ${names}`);
  }
  const { offered, cap } = chosen;
  const rtcpFeedback = commonFeedback(offered.rtcpFeedback, cap);
  const codec: AnswerCodec = { ...offered, rtcpFeedback };
  const rtx = kind === 'video' ? section.codecs.find((c) => /\/rtx$/i.test(c.mimeType) && Number(c.parameters.apt) === offered.payloadType) : undefined;
  const codecs: AnswerCodec[] = [codec, ...(rtx ? [{ ...rtx, rtcpFeedback: [] }] : [])];
  const headerExtensions = commonExtensions(section.headerExtensions, caps, kind);
  const encodings = encodingsOf(section, headerExtensions, Boolean(rtx));
  const cname = section.ssrcs.find((s) => s.cname)?.cname ?? randomBytes(8).toString('hex');
  const rtpParameters: types.RtpParameters = {
    mid: section.mid,
    codecs: codecs.map((c) => ({
      mimeType: c.mimeType,
      payloadType: c.payloadType,
      clockRate: c.clockRate,
      ...(c.channels !== undefined ? { channels: c.channels } : {}),
      parameters: c.parameters,
      rtcpFeedback: c.rtcpFeedback,
    })) as types.RtpCodecParameters[],
    headerExtensions: headerExtensions.map((e) => ({ uri: e.uri, id: e.id })),
    encodings,
    rtcp: { cname, reducedSize: section.rtcpRsize, mux: true },
  };
  const simulcastRids = encodings.every((e) => e.rid) && encodings.length > 0 ? section.simulcast!.rids : undefined;
  return {
    kind,
    rtpParameters,
    answer: {
      mid: section.mid,
      kind,
      direction: 'recvonly',
      codecs,
      headerExtensions,
      rtcpRsize: section.rtcpRsize,
      ...(simulcastRids ? { simulcastRids } : {}),
    },
  };
}

/**
 * The producers a WHIP offer asks for, one per m= section it sends. Throws
 * CASCADE_ERR_SDP_UNSUPPORTED (406) rather than answering part of the offer (RFC 9725: no
 * partially successful answers): a section that receives, a data channel, a codec the
 * router does not forward, more than one track of a kind, streams that cannot be told apart.
 */
export function ingestTracks(offer: ParsedOffer, caps: types.RtpCapabilities): IngestTrack[] {
  const live = offer.sections.filter((s) => !s.rejected);
  if (live.length === 0) throw unsupported('every m= section is rejected');
  const kinds = new Set<string>();
  for (const s of live) {
    if (s.kind !== 'audio' && s.kind !== 'video') throw unsupported(`mid ${s.mid}: ${s.type} sections are not taken (audio and video only)`);
    if (kinds.has(s.kind)) throw unsupported(`more than one ${s.kind} track: a stream has at most one audio and one video track`);
    kinds.add(s.kind);
  }
  return live.map((s) => ingestTrack(s, caps));
}
