import { describe, expect, it } from 'vitest';
import { DOCUMENTATION_SUBNETS, canCreateNamespaces, createTestNetwork } from '@cascade/testing';

/** createTestNetwork's `subnet` option: a given /24, checked against this host like the random pick. */
const support = await canCreateNamespaces();
if (!support.ok) console.warn(`[netnsSubnet.int.test] SKIPPED: ${support.reason}`);

describe.skipIf(!support.ok)('createTestNetwork({ subnet })', () => {
  it('uses the /24 asked for, refuses one already in use, takes the next free of a list, and keeps 10.x by default', async () => {
    const a = await createTestNetwork({ count: 1, subnet: '198.51.100.0/24', shaping: 'none' });
    try {
      expect(a.subnet).toBe('198.51.100.0/24');
      expect(a.rootIp).toBe('198.51.100.1');
      expect(a.namespaces[0]!.ip).toBe('198.51.100.11');
      await a.verify();
      await expect(createTestNetwork({ count: 1, subnet: '198.51.100.0/24', shaping: 'none' })).rejects.toThrow(/no free test subnet: 198\.51\.100\.0\/24 overlaps 198\.51\.100\.\d+\/\d+ \(already used on this host\)/);
      const b = await createTestNetwork({ count: 1, subnet: ['198.51.100.0/24', ...DOCUMENTATION_SUBNETS], shaping: 'none' });
      try {
        expect(b.subnet).not.toBe('198.51.100.0/24');
        expect(DOCUMENTATION_SUBNETS).toContain(b.subnet);
      } finally {
        await b.cleanup();
      }
      const c = await createTestNetwork({ count: 1, shaping: 'none' });
      try {
        expect(c.subnet).toMatch(/^10\.\d+\.\d+\.0\/24$/);
      } finally {
        await c.cleanup();
      }
    } finally {
      await a.cleanup();
    }
  });

  it('rejects what is not a /24', async () => {
    await expect(createTestNetwork({ count: 1, subnet: '203.0.113.0/16' })).rejects.toThrow(TypeError);
    await expect(createTestNetwork({ count: 1, subnet: '300.0.113.0/24' })).rejects.toThrow(TypeError);
  });
});
