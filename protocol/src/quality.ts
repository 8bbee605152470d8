import type { Quality } from './messages.js';

/**
 * The highest spatial layer a quality allows, on a video with `layers` spatial layers, or
 * undefined for 'audio' (no video at all). 'auto' and 'high' allow the top layer; 'medium' the
 * middle one (the top of two); 'low' the lowest. A quality the stream has no layer for gets the
 * nearest it has: 'high' on a single-layer stream is that layer. Nodes apply it to consumers;
 * viewers use it to ask for no more than the layers the origin still gets.
 */
export function maxLayerFor(quality: Quality, layers: number): number | undefined {
  if (quality === 'audio') return undefined;
  const top = Math.max(0, layers - 1);
  if (quality === 'low') return 0;
  if (quality === 'medium') return Math.round(top / 2);
  return top;
}
