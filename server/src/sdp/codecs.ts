import { isSameProfile } from 'h264-profile-level-id';
import type { types } from 'mediasoup';
import type { OfferedCodec } from './offer.js';

/** Codecs that only protect or repair another (never chosen as a track's codec). */
export function isAuxiliary(mimeType: string): boolean {
  return /\/(rtx|red|ulpfec|flexfec-03|CN|telephone-event)$/i.test(mimeType);
}

/**
 * The router codec an offered codec can be carried as, the way mediasoup matches them: same
 * MIME type, clock rate and channels; for H.264 the same packetization mode and profile
 * (Constrained Baseline is not Baseline, and the router forwards only the profile it names).
 */
export function matchCapability(offered: OfferedCodec, caps: types.RtpCapabilities): types.RtpCodecCapability | undefined {
  if (isAuxiliary(offered.mimeType)) return undefined;
  return (caps.codecs ?? []).find((c) => {
    if (c.mimeType.toLowerCase() !== offered.mimeType.toLowerCase() || c.clockRate !== offered.clockRate) return false;
    if (c.kind === 'audio' && (c.channels ?? 1) !== (offered.channels ?? 1)) return false;
    if (c.mimeType.toLowerCase() === 'video/h264') {
      const mode = (p: Record<string, unknown> | undefined) => Number(p?.['packetization-mode'] ?? 0);
      if (mode(c.parameters) !== mode(offered.parameters)) return false;
      if (!isSameProfile(c.parameters ?? {}, offered.parameters)) return false;
    }
    return true;
  });
}

/** The feedback both sides support (the answer may only keep what was offered). */
export function commonFeedback(offered: OfferedCodec['rtcpFeedback'], cap: types.RtpCodecCapability): { type: string; parameter: string }[] {
  const supported = cap.rtcpFeedback ?? [];
  return offered.filter((f) => supported.some((s) => s.type === f.type && (s.parameter ?? '') === f.parameter));
}

/** The offered header extensions the router knows for this kind, with the offerer's ids. */
export function commonExtensions(
  offered: { uri: string; id: number }[],
  caps: types.RtpCapabilities,
  kind: 'audio' | 'video',
): { uri: string; id: number }[] {
  const known = new Set((caps.headerExtensions ?? []).filter((h) => h.kind === kind).map((h) => h.uri as string));
  return offered.filter((e) => known.has(e.uri));
}
