/**
 * A small Node program run inside a network namespace (or here), talking to the test in JSON
 * lines: it prints one JSON object per line on stdout, reads lines on stdin. Tests use it for
 * the part of a scenario that must live on another "host" (a client behind a NAT, a server on
 * the WAN side), where the test process itself cannot be.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './processes.js';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface NsNode {
  readonly proc: ChildProcess;
  /** Every JSON line printed so far, in order. */
  readonly messages: Record<string, unknown>[];
  /** Lines on stderr and non-JSON stdout (for failure messages). */
  readonly logs: string[];
  /** Resolve with the first message (already printed or still to come) that `match` accepts. */
  next(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** Write one JSON line to its stdin. */
  send(msg: unknown): void;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Run ES module `code` with `node --input-type=module -e` inside namespace `netns` (undefined:
 * here), with `process.argv[1]` = JSON of `arg`. The working directory is the repository root,
 * so the code can import workspace packages and dependencies by name.
 */
export function nodeInNamespace(netns: string | undefined, code: string, arg: unknown = {}): NsNode {
  const argv = [process.execPath, '--input-type=module', '-e', code, JSON.stringify(arg)];
  const opts = { stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], cwd: path.join(REPO_ROOT, 'relay') };
  const proc = netns ? spawn('ip', ['netns', 'exec', netns, ...argv], opts) : spawn(argv[0]!, argv.slice(1), opts);
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const messages: Record<string, unknown>[] = [];
  const logs: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push(line);
      }
    }
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line) logs.push(line);
    if (logs.length > 400) logs.splice(0, logs.length - 400);
  });
  proc.stdin!.on('error', () => undefined);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let dead = false;
  void exited.then(() => {
    dead = true;
    for (const w of waiters) w();
  });
  return {
    proc,
    messages,
    logs,
    next(match, timeoutMs = 30_000, what = 'a message') {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < messages.length; seen++) {
            if (match(messages[seen]!)) {
              finish();
              return resolve(messages[seen]!);
            }
          }
          if (dead) {
            finish();
            reject(new Error(`${what}: the program exited (${proc.exitCode ?? proc.signalCode}) first\n${logs.slice(-20).join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${what}: none in ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-5))}\n${logs.slice(-20).join('\n')}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    send(msg) {
      if (!dead) proc.stdin!.write(`${JSON.stringify(msg)}\n`);
    },
    async kill() {
      if (!dead) proc.kill('SIGKILL');
      await exited;
    },
  };
}
