import { describe, expect, it } from 'vitest';
import type { NodeSnapshot } from '@cascade/protocol';
import { StrayPipes } from '../src/StrayPipes.js';
import type { TreeEntry } from '../src/types.js';

const stats = { viewers: 0, children: 2, bitrateInKbps: 0, bitrateOutKbps: 0, lossRate: 0, cpu: 0, bytesOut: 0 };
const feeding = (...children: string[]): NodeSnapshot => ({
  stats,
  streams: [{ streamId: 's1', parentNodeId: null, depth: 0, viewers: 0, children: children.length, childNodeIds: children, bitrateOutKbps: 0 }],
});
const entry = (nodeId: string, parent: string | null): TreeEntry => ({ nodeId, parent, depth: parent ? 1 : 0, viewers: 0, children: 0, since: 0 });
/** The tree: a under p, b moved under q. */
const tree = async () => [entry('p', null), entry('a', 'p'), entry('q', 'p'), entry('b', 'q')];

describe('StrayPipes', () => {
  it('tells a parent to close a pipe to a relay moved elsewhere once the grace period is over, never to its own children', async () => {
    const strays = new StrayPipes({ graceMs: 10_000 });
    expect(await strays.check('p', feeding('a', 'b'), tree, 0, true)).toEqual([]);
    expect(await strays.check('p', feeding('a', 'b'), tree, 9_999, true)).toEqual([]);
    expect(await strays.check('p', feeding('a', 'b'), tree, 10_000, true)).toEqual([{ streamId: 's1', nodeId: 'b' }]);
    // Closed meanwhile: forgotten, and a new stray starts its own grace period.
    expect(await strays.check('p', feeding('a'), tree, 11_000, true)).toEqual([]);
    expect(await strays.check('p', feeding('a', 'b'), tree, 12_000, true)).toEqual([]);
  });

  it('drops at once a pipe whose child said it was dead, and nothing while the store is still settling', async () => {
    const strays = new StrayPipes({ graceMs: 10_000 });
    strays.condemn('p', 's1', 'b');
    expect(await strays.check('p', feeding('b'), tree, 0, false)).toEqual([]);
    strays.condemn('p', 's1', 'b');
    expect(await strays.check('p', feeding('b'), tree, 0, true)).toEqual([{ streamId: 's1', nodeId: 'b' }]);
    // A condemned child that is still (or again) a child of the parent is left alone.
    strays.condemn('p', 's1', 'a');
    expect(await strays.check('p', feeding('a'), tree, 0, true)).toEqual([]);
  });
});
