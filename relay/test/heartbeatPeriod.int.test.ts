import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getJson,
  issueToken,
  startRelay,
  startServer,
  type NodeProcess,
} from '@cascade/testing';

/**
 * An operator shortens the heartbeat period and node TTL on the controller only. Volunteers
 * run with the defaults (1 s heartbeats, longer than this TTL): they must follow the period the
 * controller gives them at registration, or they expire and drop their control connection over
 * and over.
 */
// The TTL is shorter than the relays' default period (1 s), so a relay on its own period expires;
// nine of the controller's periods fit in it, so a relay stalled for a moment on a busy machine does not.
const HEARTBEAT_MS = 100;
const NODE_TTL_MS = 900;

let origin: NodeProcess;
let relay: NodeProcess & { nodeId: string };

/** The controller's pino lines with this message. */
const logged = (p: NodeProcess, msg: string) =>
  p.logs.filter((line) => {
    try {
      return (JSON.parse(line) as { msg?: string }).msg === msg;
    } catch {
      return false;
    }
  });

beforeAll(async () => {
  origin = await startServer({ env: { CASCADE_TOPOLOGY_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), CASCADE_TOPOLOGY_NODE_TTL_MS: String(NODE_TTL_MS) } });
  relay = await startRelay({ controllerUrl: origin.url, token: issueToken({ scope: ['relay'], sub: 'defaults', volunteer: true }) });
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await origin?.stop();
});

describe('heartbeat period', () => {
  it('a relay on default settings follows the period the controller gives at registration', async () => {
    const h = await getJson<{ heartbeatIntervalMs?: number }>(`${relay.url}/healthz`);
    expect(h.body.heartbeatIntervalMs).toBe(HEARTBEAT_MS);
  });

  it('so it stays registered and alive over many node TTLs, on one control connection', async () => {
    // A window of observation, not a speed claim: ten TTLs during which nothing may expire.
    const seen: string[] = [];
    for (let i = 0; i < 35; i++) {
      const nodes = (await getJson<{ nodes: { id: string; alive: boolean; status: string }[] }>(`${origin.url}/api/nodes`)).body.nodes;
      const n = nodes.find((x) => x.id === relay.nodeId);
      const health = (await getJson<{ controller: string }>(`${relay.url}/healthz`)).body.controller;
      seen.push(`${n ? `${n.status}${n.alive ? '' : ' (expired)'}` : 'absent'}/${health}`);
      await delay(200);
    }
    expect(seen.filter((s) => s !== 'ready/ready'), seen.join(' ')).toEqual([]);
    expect(logged(origin, 'relay registered')).toHaveLength(1);
  });
});
