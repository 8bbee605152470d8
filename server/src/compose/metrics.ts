import { Counter, Gauge, type Registry } from 'prom-client';
import type { RelayGateway } from '@cascade/controller';
import type { ControllerParts } from './controlPlane.js';

/** The controller's metrics, driven by its observers and read at scrape time. */
export function registerControllerMetrics(registry: Registry, parts: ControllerParts, gateway: RelayGateway): void {
  const { controller, router } = parts;
  const placements = new Counter({
    name: 'cascade_controller_placements_total',
    help: 'Viewer placements decided by this controller instance',
    labelNames: ['attached'] as const,
    registers: [registry],
  });
  controller.observer.on('placement', (_s, _n, attached) => placements.inc({ attached: String(attached) }));
  const reparents = new Counter({ name: 'cascade_controller_reparents_total', help: 'Relays moved to a new parent', registers: [registry] });
  controller.observer.on('reparent', () => reparents.inc());
  new Gauge({ name: 'cascade_controller_relays', help: 'Media nodes connected to this controller instance', registers: [registry], collect() { this.set(gateway.relayCount); } });
  new Gauge({ name: 'cascade_controller_tunnels', help: 'Viewer sessions this instance carries to other nodes', registers: [registry], collect() { this.set(router.tunnelCount); } });
  const frames = new Counter({
    name: 'cascade_controller_tunnel_frames_total',
    help: 'Signalling frames carried between viewers or child relays and the nodes that serve them',
    labelNames: ['direction'] as const,
    registers: [registry],
  });
  router.observer.on('frame', (direction) => frames.inc({ direction }));
  // Integrity: viewers' reports, the origin's verdicts on them, relays condemned.
  const reports = new Counter({ name: 'cascade_integrity_reports_total', help: "Viewers' reports that the node serving them alters or withholds media, or stopped their picture", labelNames: ['state'] as const, registers: [registry] });
  controller.integrity.observer.on('report', (r) => reports.inc({ state: r.state }));
  const verdicts = new Counter({ name: 'cascade_integrity_probes_total', help: "The origin's probes of reported relays, by verdict", labelNames: ['verdict'] as const, registers: [registry] });
  controller.integrity.observer.on('verdict', (_s, _r, v) => verdicts.inc({ verdict: v.verdict }));
  const condemned = new Counter({ name: 'cascade_integrity_condemned_total', help: 'Relays condemned (demoted, token revoked) on the origin\'s finding', registers: [registry] });
  controller.integrity.observer.on('condemned', () => condemned.inc());
}
