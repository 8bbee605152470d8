import type { NodeSample, NodeSeries } from './LoadTestTypes.js';
import { nodeMetrics } from './prometheus.js';

export interface NodeScraperOptions {
  /** The URL under test (the origin): its API lists the relays; its /metrics is scraped directly. */
  url: string;
  streamId: string;
  /** Per request, ms. Default 2000. */
  timeoutMs?: number;
}

export interface NodeScraperDeps {
  /** Seconds since the test started. */
  elapsedSec: () => number;
  fetch?: typeof fetch;
}

interface Tracked {
  series: NodeSeries;
  lastBytes: number | undefined;
  lastAt: number | undefined;
}

/** Relays carrying the stream are scraped too, up to this many nodes. */
const MAX_NODES = 64;
/** /api/nodes is re-read every this many rounds (or when an unknown relay shows up). */
const NODES_REFRESH_ROUNDS = 5;

/**
 * Reads each node that carries the stream: the origin (at the URL under test) and the relays
 * its topology lists, whose URLs come from GET /api/nodes. One round per scrape() call; the
 * caller sets the pace.
 */
export class NodeScraper {
  readonly #options: NodeScraperOptions;
  readonly #deps: NodeScraperDeps;
  readonly #fetch: typeof fetch;
  readonly #nodes = new Map<string, Tracked>();
  #urls = new Map<string, { url: string; kind: string }>();
  #round = 0;
  #originId: string | undefined;
  #errors: string[] = [];

  constructor(options: NodeScraperOptions, deps: NodeScraperDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#fetch = deps.fetch ?? fetch;
  }

  /** Distinct problems seen (first few), for the report's warnings. */
  get errors(): string[] {
    return this.#errors;
  }

  async scrape(): Promise<void> {
    const round = this.#round++;
    const topo = await this.#json<{ nodes: { id: string; kind: string }[] }>(
      `/api/streams/${encodeURIComponent(this.#options.streamId)}/topology`,
    );
    const carrying = (topo?.nodes ?? []).slice(0, MAX_NODES);
    const unknown = carrying.some((n) => n.kind !== 'origin' && !this.#urls.has(n.id));
    if (round % NODES_REFRESH_ROUNDS === 0 || unknown) {
      // A relay's url is empty (relays open no HTTP port to viewers) and a volunteer's is null
      // without an operator token: such relays are followed through the topology only.
      const list = await this.#json<{ nodes: { id: string; kind: string; url: string | null }[] }>('/api/nodes');
      if (list) this.#urls = new Map(list.nodes.map((n) => [n.id, { url: n.url ?? '', kind: n.kind }]));
    }
    this.#originId ??=
      carrying.find((n) => n.kind === 'origin')?.id ?? [...this.#urls].find(([, v]) => v.kind === 'origin')?.[0];
    const targets = new Map<string, { url: string; kind: string }>();
    // The origin is always read at the URL under test: it is the one address known to be reachable.
    targets.set(this.#originId ?? 'origin', { url: this.#options.url, kind: 'origin' });
    for (const n of carrying) {
      if (n.kind === 'origin') continue;
      const u = this.#urls.get(n.id);
      if (u?.url) targets.set(n.id, { url: u.url.replace(/\/$/, ''), kind: n.kind });
      else if (u) this.#error('relays announce no address to read their /metrics from: their figures come from the topology only');
    }
    await Promise.all([...targets].map(([id, t]) => this.#scrapeNode(id, t.url, t.kind)));
  }

  series(): NodeSeries[] {
    return [...this.#nodes.values()].map((n) => n.series);
  }

  /** Latest sample per node id. */
  latest(): Map<string, NodeSample> {
    const out = new Map<string, NodeSample>();
    for (const [id, n] of this.#nodes) {
      const s = n.series.samples[n.series.samples.length - 1];
      if (s) out.set(id, s);
    }
    return out;
  }

  async #scrapeNode(id: string, url: string, kind: string): Promise<void> {
    let n = this.#nodes.get(id);
    if (!n) {
      n = { series: { id, kind, url, samples: [], scrapeErrors: 0 }, lastBytes: undefined, lastAt: undefined };
      this.#nodes.set(id, n);
    }
    const text = await this.#text(`${url}/metrics`);
    if (text === undefined) {
      n.series.scrapeErrors++;
      return;
    }
    const m = nodeMetrics(text);
    const at = Date.now();
    let kbps: number | null = m.bitrateOutKbps ?? null;
    if (m.bytesSent !== undefined && n.lastBytes !== undefined && n.lastAt !== undefined && at > n.lastAt) {
      kbps = (Math.max(0, m.bytesSent - n.lastBytes) * 8) / (at - n.lastAt);
    }
    if (m.bytesSent !== undefined) {
      n.lastBytes = m.bytesSent;
      n.lastAt = at;
    }
    n.series.samples.push({
      t: this.#deps.elapsedSec(),
      cpuCores: m.cpuCores ?? null,
      rssBytes: m.rssBytes ?? null,
      consumers: m.consumers ?? null,
      viewers: m.viewers ?? null,
      bitrateOutKbps: kbps,
    });
  }

  async #json<T>(path: string): Promise<T | undefined> {
    const text = await this.#text(`${this.#options.url}${path}`);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      this.#error(`${path}: not JSON`);
      return undefined;
    }
  }

  async #text(url: string): Promise<string | undefined> {
    try {
      const res = await this.#fetch(url, { signal: AbortSignal.timeout(this.#options.timeoutMs ?? 2000) });
      if (!res.ok) {
        this.#error(`${url}: HTTP ${res.status}`);
        return undefined;
      }
      return await res.text();
    } catch (err) {
      this.#error(`${url}: ${(err as Error).message}`);
      return undefined;
    }
  }

  #error(message: string): void {
    if (this.#errors.length < 20 && !this.#errors.includes(message)) this.#errors.push(message);
  }
}
