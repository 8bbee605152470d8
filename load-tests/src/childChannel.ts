import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ParentMessage, WorkerMessage } from './workerMessages.js';

/**
 * A viewer process as the fleet sees it, whatever runs inside: a forked Node process
 * (werift viewers, IPC) or the Go sink (JSON lines on stdin/stdout). Both speak
 * workerMessages.ts.
 */
export interface ChildChannel {
  readonly pid: number;
  readonly exited: boolean;
  /** Exit code or signal once exited, for messages. */
  readonly exitStatus: string | null;
  /** The last lines it wrote to stderr. */
  readonly stderr: readonly string[];
  send(msg: ParentMessage): void;
  onMessage(cb: (msg: WorkerMessage) => void): void;
  offMessage(cb: (msg: WorkerMessage) => void): void;
  onExit(cb: () => void): void;
  offExit(cb: () => void): void;
  kill(signal?: NodeJS.Signals): void;
}

const STDERR_LINES = 20;

class ProcessChannel implements ChildChannel {
  readonly #proc: ChildProcess;
  readonly #stderr: string[] = [];
  readonly #messageCbs = new Set<(msg: WorkerMessage) => void>();
  readonly #sendFn: (msg: ParentMessage) => void;
  #exited = false;

  constructor(proc: ChildProcess, send: (msg: ParentMessage) => void) {
    this.#proc = proc;
    this.#sendFn = send;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) this.#stderr.push(line.slice(0, 300));
      this.#stderr.splice(0, Math.max(0, this.#stderr.length - STDERR_LINES));
    });
    proc.on('exit', () => (this.#exited = true));
    // A process that cannot be started (ENOENT) exits without an exit event.
    proc.on('error', (err) => {
      this.#stderr.push(err.message);
      this.#exited = true;
      proc.emit('exit', null, null);
    });
  }

  get pid(): number {
    return this.#proc.pid ?? 0;
  }
  get exited(): boolean {
    return this.#exited;
  }
  get exitStatus(): string | null {
    const p = this.#proc;
    return p.exitCode !== null ? String(p.exitCode) : p.signalCode;
  }
  get stderr(): readonly string[] {
    return this.#stderr;
  }

  emitMessage(msg: WorkerMessage): void {
    for (const cb of this.#messageCbs) cb(msg);
  }
  send(msg: ParentMessage): void {
    if (!this.#exited) this.#sendFn(msg);
  }
  onMessage(cb: (msg: WorkerMessage) => void): void {
    this.#messageCbs.add(cb);
  }
  offMessage(cb: (msg: WorkerMessage) => void): void {
    this.#messageCbs.delete(cb);
  }
  onExit(cb: () => void): void {
    this.#proc.on('exit', cb);
  }
  offExit(cb: () => void): void {
    this.#proc.off('exit', cb);
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.#exited) this.#proc.kill(signal);
  }
}

/** A Node viewer process (viewerProcess.ts) over IPC. */
export function forkChannel(script: string, options: { netns?: string } = {}): ChildChannel {
  // In a network namespace: `ip netns exec` runs node in it, keeping the IPC descriptor.
  const where = options.netns ? { execPath: 'ip', execArgv: ['netns', 'exec', options.netns, process.execPath] } : {};
  const proc = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json', ...where });
  const ch = new ProcessChannel(proc, (m) => {
    if (proc.connected) proc.send(m);
  });
  proc.on('message', (m: WorkerMessage) => ch.emitMessage(m));
  return ch;
}

/**
 * A process speaking JSON lines (the Go sink), optionally pinned to `cores` with taskset. Its
 * stdin is the lifeline: when this process dies the pipe closes and the child exits.
 */
export function spawnJsonLines(bin: string, args: string[] = [], options: { cores?: string; env?: NodeJS.ProcessEnv } = {}): ChildChannel {
  const [cmd, argv] = options.cores !== undefined ? ['taskset', ['-c', options.cores, bin, ...args]] : [bin, args];
  const proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
  proc.stdin!.on('error', () => {}); // EPIPE once it has exited: the exit event says so
  const ch = new ProcessChannel(proc, (m) => {
    if (proc.stdin!.writable) proc.stdin!.write(`${JSON.stringify(m)}\n`);
  });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      ch.emitMessage(JSON.parse(line) as WorkerMessage);
    } catch {
      // not a message (it never prints anything else)
    }
  });
  return ch;
}

/** Resolve on the first message `match` accepts; reject on exit or after timeoutMs. */
export function waitForMessage(ch: ChildChannel, match: (m: WorkerMessage) => boolean, timeoutMs: number, what: string): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (err: Error | undefined, msg?: WorkerMessage) => {
      clearTimeout(timer);
      ch.offMessage(onMessage);
      ch.offExit(onExit);
      if (err) reject(err);
      else resolve(msg!);
    };
    const onMessage = (m: WorkerMessage) => {
      if (m.type === 'fatal') done(new Error(`${what}: ${m.message}`));
      else if (match(m)) done(undefined, m);
    };
    const onExit = () => done(new Error(`${what} (exited with ${ch.exitStatus}; stderr: ${ch.stderr.slice(-3).join(' | ') || 'none'})`));
    timer = setTimeout(() => done(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
    ch.onMessage(onMessage);
    ch.onExit(onExit);
    if (ch.exited) onExit();
  });
}

/** Wait briefly for a process to exit by itself, then kill it (only our own children). */
export async function reap(ch: ChildChannel, graceMs = 5000): Promise<void> {
  if (ch.exited) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      ch.kill('SIGKILL');
      resolve();
    }, graceMs);
    ch.onExit(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
