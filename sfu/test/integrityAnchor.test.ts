import { describe, expect, it, vi } from 'vitest';
import { silentLogger, type NodeResult } from '@cascade/protocol';
import { withIntegrityAnchor } from '../src/integrity/anchor.js';

const answer: NodeResult<'stream.watch'> = {
  action: 'serve',
  nodeId: 'relay-1',
  rtpCapabilities: {},
  iceServers: [],
  stream: { id: 'k3v9d2xq7m', title: 't', state: 'live', createdAt: 1 },
};

describe('withIntegrityAnchor', () => {
  it("puts the origin's key and clock in the watch answer", () => {
    expect(withIntegrityAnchor(answer, 'KEY0123456789abcdef', silentLogger, () => 42).integrity).toEqual({ algorithm: 'ECDSA-P256-SHA256', publicKey: 'KEY0123456789abcdef', originTime: 42 });
  });

  it('a key the serving node announced is dropped, with a coded log line, whether or not the origin has one', () => {
    const warn = vi.fn();
    const log = { ...silentLogger, warn, child: () => log };
    const forged = { ...answer, integrity: { algorithm: 'ECDSA-P256-SHA256' as const, publicKey: 'FORGEDFORGEDFORGED', originTime: 7 } };
    expect(withIntegrityAnchor(forged, 'KEY0123456789abcdef', log, () => 42).integrity?.publicKey).toBe('KEY0123456789abcdef');
    expect(withIntegrityAnchor(forged, undefined, log).integrity).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[0]![0]).toMatchObject({ code: 'CASCADE_ERR_INTEGRITY_FOREIGN_KEY', nodeId: 'relay-1' });
  });
});
