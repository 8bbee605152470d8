/**
 * Which simulcast layer each viewer received, for how long, and how viewers behind a bandwidth
 * cap fared against free ones (layers, freezes, loss).
 */
import type { DecoderResult, ViewerResult } from './LoadTestTypes.js';
import { summarize } from './stats.js';
import type { DecoderGroupSummary, LayerGroupSummary, LayersSummary, ViewerLayerTimes } from './layerTypes.js';

export type { DecoderGroupSummary, LayerGroupSummary, LayersSummary, ViewerLayerTimes };

/** Follows one viewer's spatial layer over time. */
export class LayerClock {
  readonly #ms: number[] = [];
  #layer: number | null = null;
  #since = 0;
  #changes = 0;
  #layers = 0;

  /** The viewer's layer is now `spatialLayer` (null: nothing received). */
  on(spatialLayer: number | null, layers: number, now: number): void {
    this.#layers = Math.max(this.#layers, layers);
    if (spatialLayer === this.#layer) return;
    this.#close(now);
    if (this.#layer !== null && spatialLayer !== null) this.#changes++;
    this.#layer = spatialLayer;
    this.#since = now;
  }

  result(now: number): ViewerLayerTimes {
    this.#close(now);
    this.#since = now;
    return { msPerLayer: [...this.#ms], final: this.#layer, changes: this.#changes, layers: this.#layers };
  }

  #close(now: number): void {
    if (this.#layer === null) return;
    while (this.#ms.length <= this.#layer) this.#ms.push(0);
    this.#ms[this.#layer]! += Math.max(0, now - this.#since);
  }
}

export function summarizeLayers(viewers: readonly ViewerResult[], decoders: readonly DecoderResult[]): LayersSummary {
  const group = (capped: boolean) => summarizeGroup(viewers.filter((v) => !!v.capped === capped && v.rtp && v.rtp.packets > 0));
  const dgroup = (capped: boolean) => summarizeDecoderGroup(decoders.filter((d) => !!d.capped === capped && d.ok));
  return { free: group(false), capped: group(true), freeDecoders: dgroup(false), cappedDecoders: dgroup(true) };
}

function summarizeGroup(vs: readonly ViewerResult[]): LayerGroupSummary | null {
  if (vs.length === 0) return null;
  const total: number[] = [];
  const finalLayer: Record<string, number> = {};
  for (const v of vs) {
    v.layers?.msPerLayer.forEach((ms, i) => (total[i] = (total[i] ?? 0) + ms));
    const k = v.layers?.final === null || v.layers?.final === undefined ? 'none' : String(v.layers.final);
    finalLayer[k] = (finalLayer[k] ?? 0) + 1;
  }
  const sum = total.reduce((a, b) => a + (b ?? 0), 0);
  return {
    viewers: vs.length,
    shareOnLayer: sum > 0 ? Array.from(total, (x) => (x ?? 0) / sum) : [],
    finalLayer,
    changesPerViewer: summarize(vs.map((v) => v.layers?.changes ?? 0)),
    freezesPerViewer: summarize(vs.map((v) => v.rtp!.freezes)),
    freezeMsPerViewer: summarize(vs.map((v) => v.rtp!.freezeTotalMs)),
    lossPct: summarize(vs.map((v) => v.rtp!.lossFraction * 100)),
    bitrateKbps: summarize(vs.map((v) => v.rtp!.bitrateKbps)),
  };
}

function summarizeDecoderGroup(ds: readonly DecoderResult[]): DecoderGroupSummary | null {
  if (ds.length === 0) return null;
  const heights: Record<string, number> = {};
  let n = 0;
  const fps: number[] = [];
  for (const d of ds) {
    for (const s of d.samples) {
      if (s.frameHeight === null) continue;
      heights[String(s.frameHeight)] = (heights[String(s.frameHeight)] ?? 0) + 1;
      n++;
      if (s.framesPerSecond !== null) fps.push(s.framesPerSecond);
    }
  }
  const heightShare: Record<string, number> = {};
  for (const [h, c] of Object.entries(heights)) heightShare[h] = c / Math.max(1, n);
  return {
    decoders: ds.length,
    heightShare,
    freezesPerDecoder: summarize(ds.map((d) => d.samples.at(-1)?.freezeCount ?? 0)),
    fps: summarize(fps),
  };
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/** Lines for the printed summary. */
export function formatLayers(s: LayersSummary | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  for (const [name, g] of [['free', s.free], ['capped', s.capped]] as const) {
    if (!g) continue;
    out.push(
      `  layers, ${name} viewers (${g.viewers}): time on layer ${g.shareOnLayer.map((x, i) => `${i}: ${pct(x)}`).join(', ') || '–'}; at the end ${JSON.stringify(g.finalLayer)}; ` +
        `freezes p50 ${g.freezesPerViewer?.p50 ?? '–'} p95 ${g.freezesPerViewer?.p95 ?? '–'}; loss p50 ${g.lossPct?.p50.toFixed(2) ?? '–'} p95 ${g.lossPct?.p95.toFixed(2) ?? '–'} %`,
    );
  }
  for (const [name, g] of [['free', s.freeDecoders], ['capped', s.cappedDecoders]] as const) {
    if (!g) continue;
    out.push(
      `  decoders, ${name} (${g.decoders}): frame height ${Object.entries(g.heightShare).map(([h, x]) => `${h}p ${pct(x)}`).join(', ') || '–'}; freezes p50 ${g.freezesPerDecoder?.p50 ?? '–'} max ${g.freezesPerDecoder?.max ?? '–'}; fps p50 ${g.fps?.p50.toFixed(0) ?? '–'}`,
    );
  }
  return out;
}
