import { randomBytes } from 'node:crypto';
import {
  CascadeError,
  ENDPOINT_REQUESTS,
  NodeRequests,
  encodeRequest,
  fromWireError,
  isErrorCode,
  isValid,
  parseEnvelope,
  type NodeResult,
  type Placement,
} from '@cascade/protocol';
import { confirmEnded, isEndedNotice } from './confirmEnded.js';
import type { ControlPlane, Tunnel } from './ControlPlane.js';
import type { Session } from './Session.js';

const WATCH_RESULT = NodeRequests['stream.watch'].result;

/** The error a tunnel's close code and reason stand for (a coded close, or the path failing). */
function closeError(code: number, reason: string): CascadeError {
  if (isErrorCode(reason)) return fromWireError({ code: reason, message: reason });
  return new CascadeError('CASCADE_ERR_NODE_UNREACHABLE', `closed (${code})`);
}

/**
 * Serve a viewer from the node the controller placed it on, through the controller: this
 * session keeps the viewer's connection, and from the watch on carries its messages to that
 * node and the node's back, as they are (the node checks them as it checks any client's; the
 * viewer's SDK checks the node's). Whatever ends one end ends the other, with its code.
 *
 * While the node cannot be reached (a control-plane outage) the session stays, media keeps
 * flowing, pings are answered here and other requests fail with NODE_UNREACHABLE.
 */
export async function forwardViewer(
  session: Session,
  control: ControlPlane,
  options: { streamId: string; placement: Placement; timeoutMs: number; exclude?: string[] },
): Promise<NodeResult<'stream.watch'>> {
  const { streamId, placement } = options;
  let tunnel: Tunnel;
  try {
    tunnel = control.openTunnel(placement.nodeId, { remoteAddress: session.remoteAddress });
  } catch (err) {
    control.placementUnused(streamId, placement.nodeId);
    throw err;
  }
  const watchId = `fwd-${randomBytes(6).toString('hex')}`;
  let answered = false;
  let heardFromNode = false;
  const result = new Promise<NodeResult<'stream.watch'>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CascadeError('CASCADE_ERR_NODE_UNREACHABLE', `${placement.nodeId} did not answer`)), options.timeoutMs);
    tunnel.onMessage((raw) => {
      heardFromNode = true;
      if (answered) {
        if (typeof raw !== 'string') return;
        if (!isEndedNotice(raw)) session.peer.sendRaw(raw);
        else void passEnded(raw);
        return;
      }
      let env;
      try {
        env = parseEnvelope(String(raw), 256 * 1024);
      } catch {
        return;
      }
      if (env.kind !== 'response' || env.id !== watchId) {
        // A notification before the answer (the stream's state): the viewer gets it too.
        if (env.kind === 'notification') session.peer.sendRaw(String(raw));
        return;
      }
      clearTimeout(timer);
      answered = true;
      if (!env.ok) return reject(fromWireError(env.error));
      const res = env.data as NodeResult<'stream.watch'>;
      if (!isValid(WATCH_RESULT, res) || res.nodeId !== placement.nodeId) {
        return reject(new CascadeError('CASCADE_ERR_PROTOCOL_INVALID_PARAMS', `${placement.nodeId} answered the watch with something else`));
      }
      resolve(res);
    });
    tunnel.onClose((code, reason) => {
      clearTimeout(timer);
      if (!answered) {
        answered = true;
        return reject(closeError(code, reason));
      }
      session.log.info({ nodeId: placement.nodeId, code, reason }, 'forwarded session ended by the far side');
      session.peer.close(code >= 4000 ? code : 4502, isErrorCode(reason) ? reason : 'CASCADE_ERR_NODE_GONE');
    });
  });
  // A relay saying the stream ended is believed once the controller agrees; a relay that lies
  // about it loses the viewer (moved make-before-break, its picture kept meanwhile).
  const passEnded = async (raw: string) => {
    if (await confirmEnded(control, streamId)) return session.peer.sendRaw(raw);
    session.log.warn({ streamId, nodeId: placement.nodeId }, 'serving node said the stream ended; the controller says it did not');
    session.notify('node.draining', { reason: 'the node serving you sent a false end of stream' });
  };
  session.once('close', () => tunnel.close(1000, 'viewer left'));
  // `exclude` tells the node this viewer arrives from a failed one (it resumes such viewers' video together).
  tunnel.send(encodeRequest(watchId, 'stream.watch', { streamId, ticket: placement.ticket, ...(options.exclude?.length ? { exclude: options.exclude } : {}) }));
  let res: NodeResult<'stream.watch'>;
  try {
    res = await result;
  } catch (err) {
    tunnel.close(1000, 'watch failed');
    // The node never heard of this viewer: its reserved place is given back here (otherwise the node does it).
    if (!heardFromNode) control.placementUnused(streamId, placement.nodeId);
    throw err;
  }
  if (session.closed) throw new CascadeError('CASCADE_ERR_CLIENT_CLOSED');
  session.claimRole('viewer', streamId);
  session.forwardedTo = placement.nodeId;
  session.peer.forward((msg) => {
    // Receipts and integrity reports are for the controller behind this endpoint, never for the node they are about.
    if (ENDPOINT_REQUESTS.has(msg.type)) return false;
    if (tunnel.reachable) {
      if (msg.type !== 'session.ping') {
        tunnel.send(msg.raw);
        return true;
      }
      // A ping that cannot reach the node is answered here: the viewer judges the node by its media.
      void tunnel.sendChecked(msg.raw).then((sent) => sent || session.peer.handleLocally(msg));
      return true;
    }
    // The node is out of reach for now: its media still flows; only a ping can be answered here.
    if (msg.type === 'session.ping') return false;
    if (msg.kind === 'request' && msg.id !== undefined) {
      session.peer.respondError(msg.id, new CascadeError('CASCADE_ERR_NODE_UNREACHABLE', placement.nodeId));
    }
    return true;
  });
  session.log.info({ streamId, nodeId: placement.nodeId, tunnel: tunnel.id }, 'viewer served through the controller');
  return res;
}
