/**
 * SDP offers from WHIP and WHEP clients, read into plain objects: the ICE and DTLS parameters,
 * and per m= section its codecs, header extensions, SSRCs, RIDs and simulcast. Only the shape
 * is checked here (what makes an offer SDP at all); whether Cascade can take the media is the
 * mapping's business (ingest.ts, playback.ts).
 */
import * as sdpTransform from 'sdp-transform';
import { CascadeError } from '@cascade/protocol';

export type MediaKind = 'audio' | 'video';
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface OfferedCodec {
  payloadType: number;
  /** `audio/opus`, `video/VP8`, `video/rtx`… as mediasoup spells them. */
  mimeType: string;
  clockRate: number;
  channels?: number;
  parameters: Record<string, string | number>;
  rtcpFeedback: { type: string; parameter: string }[];
}

export interface OfferedSection {
  /** Position of the m= line (the answer keeps the order). */
  index: number;
  kind: MediaKind | 'application' | 'other';
  /** The m= line's media type as written (for mirroring sections we do not take). */
  type: string;
  protocol: string;
  /** Port 0: the offerer itself rejected this section. */
  rejected: boolean;
  mid: string;
  direction: Direction;
  codecs: OfferedCodec[];
  headerExtensions: { uri: string; id: number }[];
  /** SSRCs in order of appearance (a=ssrc), with their cname if given. */
  ssrcs: { id: number; cname?: string }[];
  ssrcGroups: { semantics: string; ssrcs: number[] }[];
  /** a=rid lines (RFC 8851) with their restrictions (max-width=…), `send` or `recv`. */
  rids: { id: string; direction: string; params: Record<string, string> }[];
  /** The first alternative of each stream of a=simulcast (RFC 8853), in order, `~` (paused) removed. */
  simulcast: { direction: 'send' | 'recv'; rids: string[] } | undefined;
  rtcpMux: boolean;
  rtcpRsize: boolean;
  /** a=msid: stream and track ids. */
  msid: { stream: string; track: string } | undefined;
  /** The payload list of the m= line as written. */
  payloads: string;
}

export interface ParsedOffer {
  ice: { usernameFragment: string; password: string };
  fingerprints: { algorithm: string; value: string }[];
  /** The offerer's DTLS role preference (RFC 4145); actpass when absent. */
  setup: 'actpass' | 'active' | 'passive';
  /** The mids of the BUNDLE group, if any. */
  bundle: string[];
  sections: OfferedSection[];
}

const invalid = (detail: string) => new CascadeError('CASCADE_ERR_SDP_INVALID', detail);

function mimeOf(kind: string, codec: string): string {
  return `${kind}/${codec}`;
}

/** fmtp parameters as a map: numbers where they look like numbers, as mediasoup expects them. */
export function parseFmtp(config: string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const part of config.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    // profile-level-id is a hex string that sometimes looks decimal (42001f does not, 640032 does).
    out[key] = key !== 'profile-level-id' && /^\d{1,9}$/.test(value) ? Number(value) : value;
  }
  return out;
}

function parseSimulcast(m: sdpTransform.MediaDescription): OfferedSection['simulcast'] {
  const s = m.simulcast;
  if (!s) return undefined;
  const direction = s.dir1 === 'send' || s.dir1 === 'recv' ? s.dir1 : undefined;
  if (!direction) return undefined;
  // "q;h;f" or "q,x;h;~f": streams separated by ';', alternatives by ','; '~' marks a paused one.
  const rids = String(s.list1)
    .split(';')
    .map((stream) => stream.split(',')[0]!.replace(/^~/, '').trim())
    .filter(Boolean);
  return { direction, rids };
}

function parseSection(m: sdpTransform.MediaDescription, index: number): OfferedSection {
  const kind = m.type === 'audio' || m.type === 'video' ? m.type : m.type === 'application' ? 'application' : 'other';
  const fmtp = new Map((m.fmtp ?? []).map((f) => [f.payload, f.config]));
  const fb = m.rtcpFb ?? [];
  // The m= line's payload list is the offerer's preference order; rtpmap lines for other types do not count.
  const order = String(m.payloads ?? '').split(/\s+/).filter(Boolean).map(Number);
  const rtp = order.flatMap((pt) => (m.rtp ?? []).filter((r) => r.payload === pt));
  const codecs: OfferedCodec[] = rtp.map((r) => ({
    payloadType: r.payload,
    mimeType: mimeOf(m.type, r.codec),
    clockRate: r.rate ?? 0,
    ...(kind === 'audio' ? { channels: r.encoding ?? 1 } : {}),
    parameters: parseFmtp(fmtp.get(r.payload) ?? ''),
    rtcpFeedback: fb
      .filter((f) => String(f.payload) === String(r.payload) || f.payload === '*')
      .map((f) => ({ type: f.type, parameter: f.subtype ?? '' })),
  }));
  const ssrcs: OfferedSection['ssrcs'] = [];
  for (const a of m.ssrcs ?? []) {
    const id = Number(a.id);
    let entry = ssrcs.find((s) => s.id === id);
    if (!entry) ssrcs.push((entry = { id }));
    if (a.attribute === 'cname' && a.value) entry.cname = a.value;
  }
  const msid = m.msid?.[0];
  return {
    index,
    kind,
    type: m.type,
    protocol: m.protocol,
    rejected: m.port === 0,
    mid: m.mid === undefined ? '' : String(m.mid),
    direction: (m.direction as Direction | undefined) ?? 'sendrecv',
    codecs,
    headerExtensions: (m.ext ?? []).map((e) => ({ uri: e.uri, id: e.value })),
    ssrcs,
    ssrcGroups: (m.ssrcGroups ?? []).map((g) => ({ semantics: g.semantics, ssrcs: g.ssrcs.split(/\s+/).map(Number) })),
    rids: (m.rids ?? []).map((r) => ({
      id: String(r.id),
      direction: r.direction,
      params: Object.fromEntries(
        String(r.params ?? '')
          .split(';')
          .map((p) => p.split('='))
          .filter((kv) => kv.length === 2)
          .map(([k, v]) => [k!.trim(), v!.trim()]),
      ),
    })),
    simulcast: parseSimulcast(m),
    rtcpMux: m.rtcpMux !== undefined,
    rtcpRsize: m.rtcpRsize !== undefined,
    msid: msid ? { stream: msid.id, track: msid.appdata ?? '' } : undefined,
    payloads: String(m.payloads ?? ''),
  };
}

/**
 * Read an SDP offer. Throws CASCADE_ERR_SDP_INVALID when the text is not an SDP offer a WebRTC
 * client could have written: no v=0, no m= line, no ICE credentials or DTLS fingerprint, an
 * m= section without a mid, or sections outside the BUNDLE group.
 */
export function parseOffer(text: string): ParsedOffer {
  if (typeof text !== 'string' || !/^v=0\r?$/m.test(text.split('\n', 1)[0] ?? '')) throw invalid('the body does not start with v=0');
  let sdp: sdpTransform.SessionDescription;
  try {
    sdp = sdpTransform.parse(text);
  } catch (err) {
    throw new CascadeError('CASCADE_ERR_SDP_INVALID', 'unreadable SDP', { cause: err });
  }
  const media = sdp.media ?? [];
  if (media.length === 0) throw invalid('no m= section');
  if (media.length > 16) throw invalid('more than 16 m= sections');
  const sections = media.map(parseSection);
  const first = media.find((m) => m.port !== 0) ?? media[0]!;
  // ICE and DTLS attributes may sit at session level (libdatachannel, GStreamer) or in each m= section (browsers).
  const ufrag = first.iceUfrag ?? sdp.iceUfrag;
  const pwd = first.icePwd ?? sdp.icePwd;
  if (!ufrag || !pwd) throw invalid('no ICE credentials (a=ice-ufrag, a=ice-pwd)');
  const fp = first.fingerprint ?? sdp.fingerprint;
  if (!fp?.hash || !fp.type) throw invalid('no DTLS fingerprint (a=fingerprint)');
  const setup = String(first.setup ?? sdp.setup ?? 'actpass');
  if (setup !== 'actpass' && setup !== 'active' && setup !== 'passive') throw invalid(`a=setup:${setup}`);
  const mids = new Set<string>();
  for (const s of sections) {
    if (!s.mid) throw invalid(`m= section ${s.index} has no a=mid`);
    if (mids.has(s.mid)) throw invalid(`mid ${s.mid} appears twice`);
    mids.add(s.mid);
  }
  const bundleGroup = (sdp.groups ?? []).find((g) => g.type === 'BUNDLE');
  const bundle = bundleGroup ? String(bundleGroup.mids).split(/\s+/).filter(Boolean) : [];
  const live = sections.filter((s) => !s.rejected);
  if (live.length > 1 && !live.every((s) => bundle.includes(s.mid))) {
    throw new CascadeError('CASCADE_ERR_SDP_UNSUPPORTED', 'every m= section must be in one BUNDLE group');
  }
  return {
    ice: { usernameFragment: String(ufrag), password: String(pwd) },
    fingerprints: [{ algorithm: fp.type.toLowerCase(), value: fp.hash.toUpperCase() }],
    setup,
    bundle,
    sections,
  };
}

/** A trickle-ice-sdpfrag body (RFC 8840): the ICE credentials it carries, if any. */
export function parseSdpFragment(text: string): { usernameFragment?: string; password?: string } {
  const ufrag = /^a=ice-ufrag:(\S+)\s*$/m.exec(text)?.[1];
  const pwd = /^a=ice-pwd:(\S+)\s*$/m.exec(text)?.[1];
  if (!/^(a=|m=|c=)/m.test(text)) throw invalid('not an SDP fragment');
  return { ...(ufrag ? { usernameFragment: ufrag } : {}), ...(pwd ? { password: pwd } : {}) };
}
