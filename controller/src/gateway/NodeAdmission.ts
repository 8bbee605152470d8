import { CascadeError, type ControlParams, type Logger } from '@cascade/protocol';
import type { UpgradeRouter } from '@cascade/protocol/node';
import type { TopologyController } from '../TopologyController.js';
import type { NodeRecord } from '../types.js';
import { MediaProbe } from './MediaProbe.js';
import type { NodeConnection } from './NodeConnection.js';
import { UploadMeter } from './UploadMeter.js';

export interface NodeAdmissionOptions {
  probeTimeoutMs: number;
  /** Upload test at admission, at most this (kbit/s); 0: none. */
  uploadTestMaxKbps: number;
}

/**
 * What a media node must pass after registering and before it gets any traffic: its WebRTC
 * port answers a STUN check from here and its pipe port echoes a nonce (MediaProbe), and a
 * relay uploads here at what it declared (UploadMeter), or is held to what arrived.
 */
export class NodeAdmission {
  readonly #options: NodeAdmissionOptions;
  readonly #controller: TopologyController;
  readonly #probe: MediaProbe;
  readonly #upload: UploadMeter;

  constructor(upgrades: UpgradeRouter, options: NodeAdmissionOptions, deps: { controller: TopologyController; logger: Logger }) {
    this.#options = options;
    this.#controller = deps.controller;
    this.#probe = new MediaProbe(deps);
    this.#upload = new UploadMeter(upgrades, deps);
  }

  /**
   * The checks before any traffic: the media port and the pipe ports answer, then (relays) the
   * upload test. Resolves true when the node passed and `current()` still holds (its connection
   * is the node's latest and open); false when it was refused (its connection closed with the
   * reason) or replaced meanwhile.
   */
  async check(conn: NodeConnection, record: NodeRecord, p: ControlParams<'node.register'>, current: () => boolean): Promise<boolean> {
    const o = this.#options;
    // An origin is the operator's own machine: its pipe ports are the operator's firewall's business.
    const pipe = record.kind === 'relay' ? this.#probe.nonce(record.mediaIp, p.node.probePort, o.probeTimeoutMs) : { nonce: '', stop: () => {} };
    conn.nonce = pipe.nonce || undefined;
    const pipeAnswered = record.kind !== 'relay' ? Promise.resolve(true) : new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), o.probeTimeoutMs);
      timer.unref();
      conn.stopProbe = () => {
        clearTimeout(timer);
        pipe.stop();
        resolve(true);
      };
    });
    const [media, pipes] = await Promise.all([this.#probe.stun(record.mediaIp, p.node.mediaPort, p.node.probe, o.probeTimeoutMs), pipeAnswered]);
    if (!current()) return false;
    if (!media || !pipes) {
      const what = !media ? `UDP ${p.node.mediaPort} (viewers' media)` : `UDP ${p.node.probePort} (pipes between relays)`;
      conn.log.warn({ mediaIp: record.mediaIp, mediaPort: p.node.mediaPort, probePort: p.node.probePort, media, pipes }, 'node failed the reachability check');
      conn.peer.closeWithError(new CascadeError('CASCADE_ERR_RELAY_UNREACHABLE', `no answer from ${record.mediaIp} on ${what}`));
      return false;
    }
    if (record.kind === 'relay' && o.uploadTestMaxKbps > 0) await this.#uploadTest(conn, record);
    return current();
  }

  /** Hold the relay to the upload that really arrives here, when less than it declared. */
  async #uploadTest(conn: NodeConnection, record: NodeRecord): Promise<void> {
    const declared = conn.declared!;
    const kbps = Math.min(declared.upKbps, this.#options.uploadTestMaxKbps);
    const durationMs = 1000;
    const { nonce, result } = this.#upload.expect(durationMs * 6);
    try {
      await conn.peer.request('node.uploadTest', { nonce, kbps: Math.ceil(kbps), durationMs }, { timeoutMs: durationMs * 6 });
    } catch (err) {
      conn.log.warn({ err }, 'upload test failed: holding the relay to what arrived');
    }
    const measured = (await result) ?? 0;
    // Measured close to what was asked: the link carries at least that (above the test's ceiling,
    // the declaration stands, and viewers' loss reports catch a link that cannot carry it).
    // Otherwise the relay gets what arrived (a relay that delivered nothing gets no viewers).
    const upKbps = measured >= kbps * 0.8 ? declared.upKbps : Math.max(1, measured);
    if (upKbps < declared.upKbps) {
      record.capacity = this.#controller.relayCapacity({ ...declared, upKbps });
      conn.log.warn({ declaredKbps: declared.upKbps, measuredKbps: Math.round(measured), capacity: record.capacity }, 'relay uploads less than it declared: held to what it delivers');
      await this.#controller.registerNode(record, 'probing');
    } else {
      conn.log.info({ declaredKbps: declared.upKbps, measuredKbps: Math.round(measured) }, 'upload test passed');
    }
  }

  close(): void {
    this.#probe.close();
    this.#upload.close();
  }
}
