/**
 * WHEP offers → what the node's viewer signalling needs (the viewer's rtpCapabilities for
 * stream.subscribe) and what the answer says (each consumer, in the m= section of its kind).
 *
 * The answerer must keep the offerer's numbers (a browser receives with the payload types and
 * extension ids of its own offer, and refuses an answer that renames them), while mediasoup
 * sends each consumer the numbers of its router: hence a router numbered the player's way.
 */
import type { types } from 'mediasoup';
import { CascadeError, type ConsumerInfo } from '@cascade/protocol';
import type { AnswerMedia } from './answer.js';
import { commonFeedback, matchCapability } from './codecs.js';
import type { MediaKind, OfferedSection, ParsedOffer } from './offer.js';

const unsupported = (detail: string) => new CascadeError('CASCADE_ERR_SDP_UNSUPPORTED', detail);

/** The m= sections a WHEP offer receives on: audio and video, recvonly (or sendrecv), at most one of each. */
export function playbackSections(offer: ParsedOffer): OfferedSection[] {
  const live = offer.sections.filter((s) => !s.rejected);
  const kinds = new Set<string>();
  for (const s of live) {
    if (s.kind !== 'audio' && s.kind !== 'video') throw unsupported(`mid ${s.mid}: ${s.type} sections are not served (audio and video only)`);
    if (s.direction !== 'recvonly' && s.direction !== 'sendrecv') throw unsupported(`mid ${s.mid} is ${s.direction}: a WHEP client receives`);
    if (!s.rtcpMux) throw unsupported(`mid ${s.mid}: RTP/RTCP multiplexing (a=rtcp-mux) is required`);
    if (kinds.has(s.kind)) throw unsupported(`more than one ${s.kind} section`);
    kinds.add(s.kind);
  }
  if (live.length === 0) throw unsupported('every m= section is rejected');
  return live;
}

/**
 * The viewer's capabilities: the router's codecs the offer can receive, each with the
 * offerer's payload type, and the feedback both know. Given to transport.create, they make the
 * node send with the player's numbers (see StreamRouter.routerNumbering). No RTX (its number
 * would be the node's) and no header extensions: mediasoup writes its own extension ids, which
 * the answer cannot rename, so none is negotiated and the player demuxes by SSRC and payload type.
 */
export function viewerCapabilities(sections: readonly OfferedSection[], router: types.RtpCapabilities): types.RtpCapabilities {
  const codecs: types.RtpCodecCapability[] = [];
  for (const s of sections) {
    for (const offered of s.codecs) {
      const cap = matchCapability(offered, router);
      if (!cap || codecs.some((c) => c.mimeType === cap.mimeType && c.parameters === cap.parameters)) continue;
      codecs.push({ ...cap, preferredPayloadType: offered.payloadType, rtcpFeedback: commonFeedback(offered.rtcpFeedback, cap) });
    }
  }
  return { codecs, headerExtensions: [] };
}

/** The answer for one section: what its consumer sends (undefined: nothing of this kind to send yet). */
export function playbackAnswer(section: OfferedSection, consumer: ConsumerInfo | undefined, streamId: string): AnswerMedia | undefined {
  if (!consumer) return undefined;
  const p = consumer.rtpParameters as unknown as types.RtpParameters;
  const enc = p.encodings?.[0];
  return {
    mid: section.mid,
    kind: section.kind as MediaKind,
    direction: 'sendonly',
    codecs: p.codecs.map((c) => ({
      payloadType: c.payloadType,
      mimeType: c.mimeType,
      clockRate: c.clockRate,
      ...(c.channels !== undefined ? { channels: c.channels } : {}),
      parameters: (c.parameters ?? {}) as Record<string, string | number>,
      rtcpFeedback: (c.rtcpFeedback ?? []).map((f) => ({ type: f.type, parameter: f.parameter ?? '' })),
    })),
    headerExtensions: [],
    rtcpRsize: p.rtcp?.reducedSize ?? true,
    ...(enc?.ssrc
      ? { send: { ssrc: enc.ssrc, ...(enc.rtx?.ssrc ? { rtxSsrc: enc.rtx.ssrc } : {}), cname: p.rtcp?.cname ?? streamId, streamId, trackId: `${streamId}-${section.kind}` } }
      : {}),
  };
}
