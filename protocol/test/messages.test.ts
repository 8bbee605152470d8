import { describe, expect, it } from 'vitest';
import { NodeRequests, Notifications } from '../src/messages.js';
import { BroadcasterNotifications, BroadcasterRequests } from '../src/messages/broadcaster.js';
import { PipeNotifications, PipeRequests } from '../src/messages/pipe.js';
import { ViewerNotifications, ViewerRequests } from '../src/messages/viewer.js';

/** Keys that appear in more than one of the groups. */
const overlaps = (...groups: object[]) => {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const g of groups) {
    for (const k of Object.keys(g)) {
      if (seen.has(k)) twice.push(k);
      seen.add(k);
    }
  }
  return twice;
};

describe('messages split by role', () => {
  // NodeRequests and Notifications are spreads of the role files: a type defined in two of them
  // would silently take the last one's schema.
  it('no request or notification type is defined by two roles', () => {
    expect(overlaps(BroadcasterRequests, ViewerRequests, PipeRequests)).toEqual([]);
    expect(overlaps(BroadcasterNotifications, ViewerNotifications, PipeNotifications)).toEqual([]);
    for (const k of Object.keys({ ...BroadcasterRequests, ...ViewerRequests, ...PipeRequests })) expect(NodeRequests).toHaveProperty([k]);
  });

  it('the `/ws` endpoint answers every request type and sends every notification it did in one file (and integrity.recent, added since)', () => {
    expect(Object.keys(NodeRequests).sort()).toEqual(
      [
        'session.ping',
        'stream.publish',
        'stream.unpublish',
        'stream.watch',
        'transport.create',
        'transport.connect',
        'transport.restartIce',
        'integrity.recent',
        'producer.create',
        'stream.subscribe',
        'quality.set',
        'consumer.resume',
        'consumer.requestKeyFrame',
        'integrity.subscribe',
        'pipe.open',
        'pipe.layers',
        'viewer.receipt',
        'viewer.integrity',
      ].sort(),
    );
    expect(Object.keys(Notifications).sort()).toEqual(
      [
        'stream.state',
        'stream.viewers',
        'consumer.new',
        'consumer.closed',
        'consumer.layers',
        'transport.state',
        'node.draining',
        'pipe.producer.new',
        'pipe.producer.closed',
        'pipe.depth',
      ].sort(),
    );
  });
});
