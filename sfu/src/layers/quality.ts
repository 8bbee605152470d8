import type { types } from 'mediasoup';

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

export { maxLayerFor } from '@cascade/protocol';
