import { describe, expect, it, vi } from 'vitest';
import { InvalidStateError, silentLogger } from '@cascade/protocol';
import { LocalControlPlane } from '../src/LocalControlPlane.js';
import type { TopologyController } from '../src/TopologyController.js';
import type { TunnelRouter } from '../src/tunnels/TunnelRouter.js';
import type { NodeRecord } from '../src/types.js';

const record: NodeRecord = {
  id: 'origin-1',
  kind: 'origin',
  volunteer: false,
  owner: 'origin',
  url: 'http://origin.test:8080',
  mediaIp: '10.0.0.1',
  capacity: { maxViewers: 10, maxChildren: 2, upKbps: 0, downKbps: 0 },
  registeredAt: 1,
};

/** Only what start() and close() touch; registration is held until `register()` is called. */
function fakes() {
  let register!: () => void;
  const registered = new Promise<void>((r) => (register = r));
  const controller = { registerNode: vi.fn(() => registered), nodeGone: vi.fn(async () => {}) } as unknown as TopologyController;
  const router = { attachNode: vi.fn(async () => {}), detachNode: vi.fn() } as unknown as TunnelRouter;
  return { controller, router, register };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('LocalControlPlane.whenReady()', () => {
  it('resolves as soon as start() registered the node: the embedded controller admits it at once', async () => {
    const f = fakes();
    const control = new LocalControlPlane(record, { controller: f.controller, router: f.router, logger: silentLogger });
    const ready = vi.fn();
    void control.whenReady().then(ready);
    const started = control.start();
    await flush();
    expect(ready).not.toHaveBeenCalled();
    f.register();
    await expect(started).resolves.toBe('origin-1');
    await flush();
    expect(ready).toHaveBeenCalledTimes(1);
    await expect(control.whenReady()).resolves.toBeUndefined();
    await control.close();
  });

  it('rejects with InvalidStateError when closed before start() completed, and after close()', async () => {
    const f = fakes();
    const control = new LocalControlPlane(record, { controller: f.controller, router: f.router, logger: silentLogger });
    const ready = control.whenReady();
    await control.close();
    await expect(ready).rejects.toBeInstanceOf(InvalidStateError);
    f.register();
    await expect(control.whenReady()).rejects.toBeInstanceOf(InvalidStateError);
  });
});
