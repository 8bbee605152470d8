/** `/status/<id>`: the tree that carries a stream, refreshed every two seconds. */
import type { CascadeError, StreamState } from '@cascade/client-sdk';
import { $, demo, escapeHtml } from './page.js';

interface TopologyNode {
  id: string;
  kind: 'origin' | 'relay';
  volunteer: boolean;
  status: string;
  parent: string | null;
  depth: number;
  viewers: number;
  children: number;
  bitrateOutKbps: number;
  /** A volunteer's name (its relay token's subject). */
  name?: string;
}
interface Topology {
  streamId: string;
  viewers: number;
  depth: number;
  relayShare: number;
  nodes: TopologyNode[];
  /** Relays the origin caught altering or withholding this stream. */
  removed?: { nodeId: string; code: string; at: number }[];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** One node and, under it, the nodes it feeds. */
function renderNode(n: TopologyNode, byParent: Map<string | null, TopologyNode[]>): string {
  const badges = [
    `<span class="badge ${escapeHtml(n.kind)}">${escapeHtml(n.kind)}</span>`,
    n.volunteer ? '<span class="badge volunteer">volunteer</span>' : '',
    n.name ? `<span class="name" data-testid="volunteer-name">${escapeHtml(n.name)}</span>` : '',
    n.status !== 'ready' ? `<span class="badge ${escapeHtml(n.status)}">${escapeHtml(n.status)}</span>` : '',
  ].join('');
  const mbps = (n.bitrateOutKbps / 1000).toFixed(n.bitrateOutKbps >= 10_000 ? 0 : 1);
  const kids = byParent.get(n.id) ?? [];
  return `<li><div class="node" data-testid="node" data-node-id="${escapeHtml(n.id)}" data-depth="${Number(n.depth)}">
      <span class="id">${escapeHtml(n.id)}</span>${badges}
      <span class="figs">${plural(n.viewers, 'viewer')} · ${plural(n.children, 'relay', 'relays')} fed · ${mbps} Mbit/s out</span></div>
    ${kids.length ? `<ul>${kids.map((k) => renderNode(k, byParent)).join('')}</ul>` : ''}</li>`;
}

export async function statusPage(): Promise<void> {
  const streamId = decodeURIComponent(window.location.pathname.split('/').pop() ?? '');
  demo.streamId = streamId;
  $<HTMLAnchorElement>('watchLink').href = `/watch/${encodeURIComponent(streamId)}`;
  const render = async () => {
    try {
      const [s, t] = await Promise.all([fetch(`/api/streams/${encodeURIComponent(streamId)}`), fetch(`/api/streams/${encodeURIComponent(streamId)}/topology`)]);
      if (!s.ok || !t.ok) {
        const body = (await (s.ok ? t : s).json().catch(() => ({}))) as { code?: string; message?: string };
        throw Object.assign(new Error(body.message ?? `HTTP ${(s.ok ? t : s).status}`), { code: body.code ?? 'CASCADE_ERR_INTERNAL' });
      }
      const stream = (await s.json()) as { title: string; state: StreamState };
      const topo = (await t.json()) as Topology;
      $('error').hidden = true;
      $('title').textContent = `${stream.title} · distribution`;
      $('subtitle').textContent = `Stream ${streamId} is ${stream.state}; refreshed every two seconds.`;
      $('viewers').textContent = String(topo.viewers);
      $('relayShare').textContent = topo.viewers > 0 ? `${Math.round(topo.relayShare * 100)} %` : '–';
      $('nodeCount').textContent = String(topo.nodes.length);
      $('depth').textContent = String(topo.depth);
      const byParent = new Map<string | null, TopologyNode[]>();
      for (const n of topo.nodes) byParent.set(n.parent, [...(byParent.get(n.parent) ?? []), n]);
      // Roots: the origin, and any node whose parent is not (or no longer) in the tree.
      const ids = new Set(topo.nodes.map((n) => n.id));
      const roots = topo.nodes.filter((n) => n.parent === null || !ids.has(n.parent));
      $('tree').innerHTML = roots.map((n) => renderNode(n, byParent)).join('');
      const removed = topo.removed ?? [];
      $('removedBox').hidden = removed.length === 0;
      $('removed').innerHTML = removed
        .map((r) => `<li data-testid="removed-relay" data-node-id="${escapeHtml(r.nodeId)}"><span class="id">${escapeHtml(r.nodeId)}</span> <span class="badge condemned">demoted</span> <span class="muted">${escapeHtml(new Date(r.at).toLocaleTimeString())} · <code>${escapeHtml(r.code)}</code></span></li>`)
        .join('');
      demo.state = stream.state;
      demo.viewers = topo.viewers;
    } catch (err) {
      const e = err as CascadeError;
      demo.state = e.code === 'CASCADE_ERR_STREAM_NOT_FOUND' ? 'notfound' : 'error';
      demo.error = { code: e.code, message: e.message };
      const box = $('error');
      box.innerHTML = `<strong>${e.code === 'CASCADE_ERR_STREAM_NOT_FOUND' ? 'Stream not found' : 'Cannot read the tree'}</strong><br><code>${escapeHtml(e.code ?? '')}</code>`;
      box.hidden = false;
      $('tree').innerHTML = '';
    }
  };
  // One request at a time: a slow answer never overwrites a newer one.
  const loop = async () => {
    await render();
    setTimeout(() => void loop(), 2000);
  };
  await loop();
}
