/**
 * What the layer figures of a load test look like (see layers.ts, which computes them). Apart from
 * layers.ts so that the result types (LoadTestTypes.ts) and the code that fills them do not
 * import each other.
 */
import type { Summary } from './stats.js';

/** Time a viewer spent on each spatial layer (index 0 the lowest), from the SDK's CascadeEvent.Quality. */
export interface ViewerLayerTimes {
  msPerLayer: number[];
  /** The layer at the end (null: none, e.g. no video). */
  final: number | null;
  /** Spatial layer changes. */
  changes: number;
  /** Spatial layers the stream had. */
  layers: number;
}

export interface LayerGroupSummary {
  viewers: number;
  /** Of all the time this group spent receiving video, the share on each layer (0..1, lowest first). */
  shareOnLayer: number[];
  /** Viewers by the layer they were on at the end ('none': no video). */
  finalLayer: Record<string, number>;
  /** Spatial layer changes per viewer. */
  changesPerViewer: Summary | null;
  freezesPerViewer: Summary | null;
  freezeMsPerViewer: Summary | null;
  lossPct: Summary | null;
  bitrateKbps: Summary | null;
}

/** Decoding viewers of one group: the resolution they showed and their freezes (Chromium's counters). */
export interface DecoderGroupSummary {
  decoders: number;
  /** Share of samples at each frame height, e.g. { "180": 0.9, "360": 0.1 }. */
  heightShare: Record<string, number>;
  /** Freezes (Chromium's freezeCount) per decoder over the run. */
  freezesPerDecoder: Summary | null;
  fps: Summary | null;
}

export interface LayersSummary {
  free: LayerGroupSummary | null;
  capped: LayerGroupSummary | null;
  freeDecoders: DecoderGroupSummary | null;
  cappedDecoders: DecoderGroupSummary | null;
}

