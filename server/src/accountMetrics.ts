import { Counter, Gauge, type Registry } from 'prom-client';
import type { AccountService, CreditService, RevocationList } from '@cascade/controller';

/**
 * Prometheus series of accounts and credits, driven by the services' observer events (the
 * services never import prom-client). Labels are bounded: outcomes and codes, never ids.
 */
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
