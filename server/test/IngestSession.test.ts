import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { NodeRequests, Peer, channelPair, type Logger } from '@cascade/protocol';
import { IngestSession, type Published } from '../src/ingest/IngestSession.js';
import { nodeClient } from '../src/signalling/nodeClient.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

/** An IngestSession over a fake node (a Peer answering stream.unpublish) and a fake transport whose byte count the test sets. */
function setup(idleTimeoutMs = 60_000) {
  const [ours, theirs] = channelPair();
  const node = new Peer({ channel: theirs, inbound: NodeRequests, outbound: {}, notifications: {} });
  const unpublish = vi.fn(() => ({}));
  node.handle('stream.unpublish', unpublish);
  const transport = { bytes: 0, getStats: async () => [{ bytesReceived: transport.bytes }] };
  const published = { client: nodeClient(ours, { requestTimeoutMs: 1000 }), session: undefined, streamId: 'abc123', resumed: false } as unknown as Published;
  const session = new IngestSession(published, 'alice', { transports: [transport as never], idleTimeoutMs, what: 'test' }, silent);
  const closed = vi.fn();
  session.on('close', closed);
  return { session, node, unpublish, transport, closed };
}

describe('IngestSession', () => {
  it('close() twice emits one close and ends the node session', async () => {
    const { session, node, closed } = setup();
    const nodeClosed = new Promise((r) => node.once('close', r));
    session.close('a');
    session.close('b');
    expect(closed).toHaveBeenCalledTimes(1);
    expect(closed).toHaveBeenCalledWith('a');
    await nodeClosed;
    expect(session.closed).toBe(true);
  });

  it('the node ending the session (takeover, stream ended) closes it', async () => {
    const { session, node, closed } = setup();
    node.close(4409, 'taken over by a newer connection');
    await vi.waitFor(() => expect(closed).toHaveBeenCalledTimes(1));
    expect(String(closed.mock.calls[0]![0])).toContain('4409');
    expect(session.closed).toBe(true);
  });

  it('unpublish() asks the node to end the stream, then closes; after close it does nothing', async () => {
    const { session, unpublish, closed } = setup();
    await session.unpublish();
    expect(unpublish).toHaveBeenCalledTimes(1);
    expect(closed).toHaveBeenCalledWith('deleted by the broadcaster');
    await session.unpublish();
    expect(unpublish).toHaveBeenCalledTimes(1);
  });

  it('media that stops for idleTimeoutMs counts as the broadcaster lost; media that flows does not', async () => {
    const { transport, closed } = setup(2000);
    const flowing = setInterval(() => (transport.bytes += 1000), 50);
    await delay(900);
    expect(closed).not.toHaveBeenCalled();
    clearInterval(flowing);
    await vi.waitFor(() => expect(closed).toHaveBeenCalledWith('no media for 2000 ms'), { timeout: 8000 });
  });
});
