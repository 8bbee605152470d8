import type { types } from 'mediasoup';
import type { Quality } from '@cascade/protocol';

/**
 * Spatial layers (simulcast encodings) of a video producer: 1 for a single encoding, 0 for
 * audio. A pipe producer on a relay has the layers its parent sends it.
 */
export function layerCount(producer: Pick<types.Producer, 'kind' | 'rtpParameters'>): number {
  if (producer.kind !== 'video') return 0;
  return Math.max(1, producer.rtpParameters.encodings?.length ?? 1);
}

/** Temporal layers per spatial layer, from an encoding's scalabilityMode (L1T3, S3T3…); 1 when it says none. */
export function temporalLayers(encoding: { scalabilityMode?: string } | undefined): number {
  const m = /T(\d+)/.exec(encoding?.scalabilityMode ?? '');
  return m ? Math.max(1, Number(m[1])) : 1;
}

/**
 * The highest spatial layer a quality allows, on a video with `layers` spatial layers, or
 * undefined for 'audio' (no video at all). 'auto' and 'high' allow the top layer; 'medium' the
 * middle one (the top of two); 'low' the lowest. A quality the stream has no layer for gets the
 * nearest it has: 'high' on a single-layer stream is that layer.
 */
export function maxLayerFor(quality: Quality, layers: number): number | undefined {
  if (quality === 'audio') return undefined;
  const top = Math.max(0, layers - 1);
  if (quality === 'low') return 0;
  if (quality === 'medium') return Math.round(top / 2);
  return top;
}
