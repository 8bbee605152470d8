import { describe, expect, it, vi } from 'vitest';
import { silentLogger, type IntegrityReport, type IntegrityVerdict } from '@cascade/protocol';
import { generateTicketKey, TicketSigner } from '../src/auth/TicketSigner.js';
import { IntegrityJudge, type Prober } from '../src/integrity/IntegrityJudge.js';
import { MemoryTopologyStore } from '../src/store/MemoryTopologyStore.js';
import { NOW, addNode, policy, streamRecord } from './storeFixtures.js';

/** origin → relay `mid` → relay `leaf`, one stream; the judge with a prober that says what each relay is. */
async function setup(findings: Record<string, IntegrityVerdict['verdict']>, o: { registerProber?: boolean; whileProbing?: (relayId: string, store: MemoryTopologyStore) => Promise<void> } = {}) {
  const store = new MemoryTopologyStore({ maxChildren: 1 });
  await addNode(store, 'origin', { kind: 'origin', maxViewers: 0, maxChildren: 1 });
  await addNode(store, 'mid', { maxViewers: 1, maxChildren: 3 });
  await addNode(store, 'leaf', { maxViewers: 5, maxChildren: 1 });
  await store.putStream(streamRecord('s1', 'origin'));
  // Two viewers: the first attaches `mid` under the origin, the second `leaf` under `mid`.
  await store.placeViewer('s1', policy(1), []);
  await store.placeViewer('s1', policy(1), []);
  const tree = await store.getTree('s1');
  expect(tree.find((e) => e.nodeId === 'leaf')?.parent).toBe('mid');
  const condemn = vi.fn(async () => {});
  const judge = new IntegrityJudge({ cooldownMs: 30_000 }, { store, tickets: new TicketSigner(generateTicketKey(), 60), logger: silentLogger, now: () => NOW, condemn });
  const probed: string[] = [];
  const prober: Prober = async ({ relayId, ticket }) => {
    expect(ticket.split('.')).toHaveLength(3);
    probed.push(relayId);
    await o.whileProbing?.(relayId, store);
    const verdict = findings[relayId] ?? 'clean';
    return { verdict, ...(verdict === 'tampered' ? { code: 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH' } : {}), detail: 'test', frames: 10, rejected: verdict === 'tampered' ? 10 : 0 };
  };
  if (o.registerProber !== false) judge.registerProber('origin', prober);
  return { judge, condemn, probed };
}
const report = (nodeId: string, state: IntegrityReport['state'] = 'tampered'): IntegrityReport => ({ streamId: 's1', nodeId, state, code: 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH' });

describe('IntegrityJudge', () => {
  it("a viewer's word alone condemns nobody: the origin's probe finds the relay clean, and it is left alone (and not probed again at once)", async () => {
    const { judge, condemn, probed } = await setup({});
    await judge.report(report('leaf'), { session: 'v1' });
    await judge.report(report('leaf'), { session: 'v2' });
    expect(probed).toEqual(['leaf']);
    expect(condemn).not.toHaveBeenCalled();
    expect(judge.condemnedFor('s1')).toEqual([]);
  });

  it("the origin's finding condemns the relay, once, and it is listed for its streams", async () => {
    const { judge, condemn, probed } = await setup({ leaf: 'tampered' });
    await Promise.all([judge.report(report('leaf'), { session: 'v1' }), judge.report(report('leaf', 'unverified'), { session: 'v2' })]);
    expect(probed).toEqual(['leaf', 'mid']);
    expect(condemn).toHaveBeenCalledTimes(1);
    expect(condemn).toHaveBeenCalledWith('leaf', expect.objectContaining({ streamId: 's1', code: 'CASCADE_ERR_INTEGRITY_FRAME_MISMATCH' }));
    expect(judge.condemnedFor('s1').map((c) => c.nodeId)).toEqual(['leaf']);
    expect(judge.condemnedFor('other')).toEqual([]);
  });

  it('a fault that shows below a relay parent that has it too is the parent\'s: the parent is condemned, not the child', async () => {
    const { judge, condemn } = await setup({ leaf: 'tampered', mid: 'tampered' });
    await judge.report(report('leaf'), { session: 'v1' });
    expect(condemn).toHaveBeenCalledTimes(1);
    expect(condemn).toHaveBeenCalledWith('mid', expect.anything());
  });

  it('reports about the origin, and probes that cannot run, change nothing', async () => {
    const a = await setup({ leaf: 'tampered' });
    await a.judge.report(report('origin'), { session: 'v1' });
    expect(a.probed).toEqual([]);
    const b = await setup({ leaf: 'tampered' }, { registerProber: false });
    await b.judge.report(report('leaf'), { session: 'v1' });
    expect(b.condemn).not.toHaveBeenCalled();
  });

  it('a fault below a parent relay that cannot be checked (gone during the probe: frozen, then declared gone) is laid on nobody', async () => {
    // The leaf shows the fault; meanwhile its parent is declared gone and leaves the store (the leaf would be re-parented).
    const { judge, condemn, probed } = await setup({ leaf: 'tampered' }, { whileProbing: async (id, store) => void (id === 'leaf' && (await store.removeNode('mid'))) });
    await judge.report(report('leaf', 'unverified'), { session: 'v1' });
    expect(probed).toEqual(['leaf']);
    expect(condemn).not.toHaveBeenCalled();
  });

  it('a fault below a parent relay whose probe cannot tell is laid on nobody', async () => {
    const { judge, condemn, probed } = await setup({ leaf: 'tampered', mid: 'inconclusive' });
    await judge.report(report('leaf'), { session: 'v1' });
    expect(probed).toEqual(['leaf', 'mid']);
    expect(condemn).not.toHaveBeenCalled();
  });
});
