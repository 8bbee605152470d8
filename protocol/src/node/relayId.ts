import { randomBytes } from 'node:crypto';

/**
 * The node id a relay registers under when it names none: `<token subject>-<random>`,
 * readable in the topology and unique per run. Used by the relay (which reads the subject from
 * its token without verifying it) and by the controller (from the verified claims), so that
 * both name a relay alike.
 */
export function relayIdFor(subject: string): string {
  return `${subject.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 60)}-${randomBytes(3).toString('hex')}`;
}
