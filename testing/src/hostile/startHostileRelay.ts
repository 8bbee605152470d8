import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startRelay, type NodeProcess, type SpawnOptions } from '../processes.js';
import { waitFor } from '../wait.js';

export type HostileMode = 'none' | 'flip' | 'swap' | 'replay' | 'drop-digests' | 'delay-digests' | 'blackhole';

export interface HostileRelay extends NodeProcess {
  nodeId: string;
  /** Switch the relay to `mode`; resolves with when it took effect (its clock, ms since the epoch). */
  setMode(mode: HostileMode): Promise<number>;
}

/**
 * A relay that tampers with what it relays, on command (see hostileRelayPreload.ts): the real
 * relay process with the test module preloaded. Starts in mode `none` (honest-looking).
 */
export async function startHostileRelay(o: SpawnOptions & { controllerUrl: string; token: string; maxViewers?: number; maxChildren?: number }): Promise<HostileRelay> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-hostile-'));
  const control = path.join(dir, 'mode');
  writeFileSync(control, 'none');
  const preload = path.join(REPO_ROOT, 'testing', 'dist', 'hostile', 'hostileRelayPreload.js');
  const relay = await startRelay({
    ...o,
    env: { ...o.env, NODE_OPTIONS: `--import=${preload}`, CASCADE_TEST_HOSTILE_CONTROL: control },
  });
  if (!relay.logs.some((l) => l.includes('"hostile":"loaded"'))) throw new Error('the hostile module did not load into the relay');
  return {
    ...relay,
    async setMode(mode) {
      writeFileSync(control, mode);
      const line = await waitFor(() => [...relay.logs].reverse().find((l) => l.includes('"hostile":"mode"') && l.includes(`"mode":"${mode}"`)), { what: `the relay to switch to ${mode}`, timeoutMs: 5000, intervalMs: 10 });
      return (JSON.parse(line) as { at: number }).at;
    },
  };
}
