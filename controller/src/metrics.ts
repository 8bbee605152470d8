import { Counter, Gauge, type Registry } from 'prom-client';
import type { AccountService } from './accounts/AccountService.js';
import type { RevocationList } from './auth/RevocationList.js';
import type { CreditService } from './credits/CreditService.js';
import type { RelayGateway } from './gateway/RelayGateway.js';
import type { TopologyController } from './TopologyController.js';
import type { TunnelRouter } from './tunnels/TunnelRouter.js';

/**
 * Prometheus metrics of the controller, driven by its objects' observer events and read at
 * scrape time (as sfu/src/metrics.ts does for a media node); the controller's classes never
 * import prom-client. Labels are bounded: outcomes and codes, never ids.
 */
export function registerControllerMetrics(registry: Registry, c: { controller: TopologyController; router: TunnelRouter; gateway: RelayGateway }): void {
  const { controller, router, gateway } = c;
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
  const condemned = new Counter({ name: 'cascade_integrity_condemned_total', help: "Relays condemned (demoted, token revoked) on the origin's finding", registers: [registry] });
  controller.integrity.observer.on('condemned', () => condemned.inc());
}

/** Accounts, credits and revocations. */
export function registerAccountMetrics(registry: Registry, s: { accounts: AccountService | undefined; credits: CreditService; revocations: RevocationList }): void {
  const registers = [registry];
  const receipts = new Counter({ name: 'cascade_credits_receipts_total', help: 'Viewer receipts handled, by outcome', labelNames: ['outcome'] as const, registers });
  const confirmed = new Counter({ name: 'cascade_credits_confirmed_bytes_total', help: "Bytes viewers' receipts confirmed (after the caps)", registers });
  const credited = new Counter({ name: 'cascade_credits_credited_bytes_total', help: 'Bytes credited to volunteer accounts at settlements', registers });
  const points = new Counter({ name: 'cascade_credits_points_total', help: 'Points credited to volunteer accounts', registers });
  const charges = new Counter({ name: 'cascade_credits_watch_charges_total', help: 'Accounts charged to watch a stream', registers });
  s.credits.observer.on('receipt', (outcome, bytes) => {
    receipts.inc({ outcome });
    if (bytes > 0) confirmed.inc(bytes);
  });
  s.credits.observer.on('credit', (c) => {
    credited.inc(c.bytes);
    points.inc(c.micro / 1e6);
  });
  s.credits.observer.on('charge', () => charges.inc());

  const revocations = s.revocations;
  new Gauge({ name: 'cascade_auth_revoked_tokens', help: 'Token ids revoked (all time)', registers, collect() { this.set(revocations.size); } });

  if (!s.accounts) return;
  const attempts = new Counter({ name: 'cascade_accounts_attempts_total', help: 'Sign-ups and sign-ins, by result (ok or the refusal code)', labelNames: ['kind', 'result'] as const, registers });
  s.accounts.observer.on('signup', () => attempts.inc({ kind: 'signup', result: 'ok' }));
  s.accounts.observer.on('signin', () => attempts.inc({ kind: 'signin', result: 'ok' }));
  s.accounts.observer.on('refused', (kind, code) => attempts.inc({ kind, result: code }));
}
