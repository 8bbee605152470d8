import { describe, expect, it } from 'vitest';
import { NodeScraper } from '../src/NodeScraper.js';

/** An origin API as a deployment answers it today: relays carry no public address. */
function fakeOrigin(nodes: { id: string; kind: string; url: string | null }[]) {
  const asked: string[] = [];
  const fetch = (async (input: string | URL) => {
    const url = String(input);
    asked.push(url);
    const body = url.endsWith('/topology')
      ? { nodes: nodes.map(({ id, kind }) => ({ id, kind })) }
      : url.endsWith('/api/nodes')
        ? { nodes }
        : null;
    if (body) return new Response(JSON.stringify(body));
    if (url.endsWith('/metrics')) return new Response('cascade_media_consumers 3\n');
    return new Response('', { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, asked };
}

describe('NodeScraper', () => {
  it('reads the origin, and follows relays without a public address through the topology only, without failing', async () => {
    const origin = fakeOrigin([
      { id: 'o', kind: 'origin', url: 'http://127.0.0.1:8080' },
      { id: 'volunteer', kind: 'relay', url: null }, // a volunteer's address, hidden without an operator token
      { id: 'relay', kind: 'relay', url: '' }, // a relay opens no HTTP port to viewers
      { id: 'old', kind: 'relay', url: 'http://127.0.0.1:8091/' },
    ]);
    const scraper = new NodeScraper({ url: 'http://127.0.0.1:8080', streamId: 's' }, { elapsedSec: () => 1, fetch: origin.fetch });
    await scraper.scrape();
    expect(origin.asked.filter((u) => u.endsWith('/metrics')).sort()).toEqual(['http://127.0.0.1:8080/metrics', 'http://127.0.0.1:8091/metrics']);
    expect(scraper.errors).toEqual([expect.stringContaining('announce no address')]);
    expect([...scraper.latest().keys()].sort()).toEqual(['o', 'old']);
  });
});
