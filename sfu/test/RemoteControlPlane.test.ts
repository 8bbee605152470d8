import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CascadeError,
  ControlNotifications,
  ControlRequests,
  InvalidStateError,
  Peer,
  RelayRequests,
  channelPair,
  silentLogger,
} from '@cascade/protocol';
import { RemoteControlPlane, type ControlConnector } from '../src/control/RemoteControlPlane.js';

type ControllerPeer = Peer<typeof ControlRequests, typeof RelayRequests, typeof ControlNotifications>;

/**
 * The controller's end of `/control`, in process: it registers every node at once and, like the
 * real gateway, refuses the node's other requests until it has admitted it (`admit()`, which
 * sends `node.ready` as the gateway does after its reachability check).
 */
function fakeController() {
  const sessions: ControllerPeer[] = [];
  let admitted = false;
  const connect: ControlConnector = async () => {
    const [nodeSide, controllerSide] = channelPair();
    const peer: ControllerPeer = new Peer({ channel: controllerSide, inbound: ControlRequests, outbound: RelayRequests, notifications: ControlNotifications });
    admitted = false;
    peer.handle('node.register', (p) => ({ nodeId: p.node.id ?? 'node-1', ticketPublicKey: 'KEY', heartbeatIntervalMs: 1000 }));
    peer.handle('stream.list', () => {
      if (!admitted) throw new CascadeError('CASCADE_ERR_RELAY_NOT_REGISTERED', 'not checked yet: wait for node.ready');
      return { streams: [] };
    });
    sessions.push(peer);
    return nodeSide;
  };
  return {
    connect,
    get current(): ControllerPeer {
      return sessions.at(-1)!;
    },
    get connections(): number {
      return sessions.length;
    },
    admit() {
      admitted = true;
      this.current.notify('node.ready', { nodeId: 'node-1' });
    },
  };
}

function plane(controller: ReturnType<typeof fakeController>): RemoteControlPlane {
  return new RemoteControlPlane(
    {
      controllerUrl: 'http://controller.test',
      token: 'relay-token',
      nodeId: 'node-1',
      timeoutMs: 1000,
      maxViewers: 10,
      heartbeatIntervalMs: 1000,
      // Reconnect at once: these tests are about admission, not backoff.
      reconnectPolicy: { nextRetryDelayMs: () => 0 },
      announcement: async () => ({
        mediaIp: '127.0.0.1',
        mediaPort: 9,
        probe: { ufrag: 'ufrag1', pwd: 'p'.repeat(22) },
        probePort: 9,
        capacity: { maxViewers: 10, maxChildren: 2, upKbps: 50_000, downKbps: 50_000 },
      }),
    },
    { logger: silentLogger, handlers: { carried: () => [] }, connect: controller.connect },
  );
}

/** Let every frame in flight (microtasks, the zero-delay reconnect timer) be handled. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Whether a promise has settled yet, without waiting for it. */
async function state(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (s = 'resolved'),
    () => (s = 'rejected'),
  );
  await settle();
  return s;
}

let open: RemoteControlPlane | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

describe('RemoteControlPlane.whenReady()', () => {
  it('resolves when the controller admits the node (node.ready), not when start() resolves on registration', async () => {
    const controller = fakeController();
    const control = (open = plane(controller));
    const onReady = vi.fn();
    control.on('ready', onReady);
    await expect(control.start()).resolves.toBe('node-1');
    const ready = control.whenReady();
    expect(await state(ready)).toBe('pending');
    // The race the origin used to retry around: registered, not yet admitted.
    await expect(control.listStreams()).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_NOT_REGISTERED' });

    controller.admit();
    await expect(ready).resolves.toBeUndefined();
    // The same event relays report as 'ready'.
    expect(onReady).toHaveBeenCalledTimes(1);
    await expect(control.listStreams()).resolves.toEqual([]);
  });

  it('resolves at once while admitted, and after a lost connection waits for the next admission', async () => {
    const controller = fakeController();
    const control = (open = plane(controller));
    await control.start();
    controller.admit();
    await control.whenReady();
    expect(await state(control.whenReady())).toBe('resolved');

    const disconnected = vi.fn();
    control.on('disconnected', disconnected);
    controller.current.close(1001, 'controller restarting');
    await settle();
    expect(disconnected).toHaveBeenCalledTimes(1);
    expect(controller.connections).toBe(2);
    expect(control.connected).toBe(true);
    const again = control.whenReady();
    expect(await state(again)).toBe('pending');
    controller.admit();
    expect(await state(again)).toBe('resolved');
  });

  it('called before start() waits for the admission too', async () => {
    const controller = fakeController();
    const control = (open = plane(controller));
    const ready = control.whenReady();
    await control.start();
    expect(await state(ready)).toBe('pending');
    controller.admit();
    expect(await state(ready)).toBe('resolved');
  });

  it('rejects with the refusal when the controller turns the node away after registering it', async () => {
    const controller = fakeController();
    const control = (open = plane(controller));
    const fatal = vi.fn();
    control.on('fatal', fatal);
    await control.start();
    const ready = control.whenReady();
    // What the gateway does when its reachability check fails.
    controller.current.close(4400, 'CASCADE_ERR_RELAY_UNREACHABLE');
    await expect(ready).rejects.toMatchObject({ code: 'CASCADE_ERR_RELAY_UNREACHABLE' });
    expect(fatal).toHaveBeenCalledTimes(1);
    await expect(control.whenReady()).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('rejects with InvalidStateError when closed while waiting, and when asked after close()', async () => {
    const controller = fakeController();
    const control = plane(controller);
    await control.start();
    const ready = control.whenReady();
    control.close();
    await expect(ready).rejects.toBeInstanceOf(InvalidStateError);
    await expect(control.whenReady()).rejects.toBeInstanceOf(InvalidStateError);
    control.close();
    expect(controller.connections).toBe(1);
  });
});

describe('RemoteControlPlane start() and tunnels', () => {
  it('start() rejects when the plane is closed before it registered (it used to hang: close() dropped its listeners)', async () => {
    const never: ControlConnector = () => new Promise(() => {});
    const control = new RemoteControlPlane(
      { controllerUrl: 'http://controller.test', token: 't', timeoutMs: 1000, maxViewers: 1, heartbeatIntervalMs: 1000, announcement: async () => ({}) as never },
      { logger: silentLogger, handlers: { carried: () => [] }, connect: never },
    );
    const started = control.start();
    control.close();
    await expect(started).rejects.toBeInstanceOf(InvalidStateError);
  });

  it('sessions opened here through the controller are hosted, declared on registration, carried both ways, and closed with the plane', async () => {
    const controller = fakeController();
    const control = plane(controller);
    const hosted: { data: string[]; closed?: string } = { data: [] };
    control.onTunnel((channel) => {
      channel.onMessage((d) => hosted.data.push(String(d)));
      channel.onClose((_code, reason) => (hosted.closed = reason));
    });
    const sent: { type: string; data: unknown }[] = [];
    await control.start();
    controller.current.on('notification', (type, data) => sent.push({ type, data }));
    controller.current.notify('tunnel.open', { id: 'tunnel-0000000001', from: 'front-1' });
    controller.current.notify('tunnel.data', { id: 'tunnel-0000000001', data: 'hello' });
    await settle();
    expect(control.hostedCount).toBe(1);
    expect(hosted.data).toEqual(['hello']);
    const opened = control.openTunnel('parent-1');
    await settle();
    expect(sent.map((s) => s.type)).toEqual(['tunnel.open']);
    expect(sent[0]!.data).toMatchObject({ id: opened.id, to: 'parent-1' });
    control.close();
    expect(hosted.closed).toBe('CASCADE_ERR_NODE_SHUTTING_DOWN');
    expect(control.hostedCount).toBe(0);
  });
});
