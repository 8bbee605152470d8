/**
 * Self-contained functions run as `node -e` inside a network namespace (netns.ts): how the test
 * networks start their userspace switch and check that every member reaches every other.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * TCP reachability check run in one namespace (as `node -e`): listen on `own`:port, report
 * "listening", and on "go" connect to every target; print the failures as JSON. Exits only
 * when killed (or when its stdin closes).
 */
export function reachProbe(net: typeof import('node:net'), cfg: { own: string; port: number; targets: string[]; timeoutMs: number }): void {
  const srv = net.createServer((s) => s.end());
  srv.listen(cfg.port, cfg.own, () => process.stdout.write('listening\n'));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.once('data', async () => {
    const failed: string[] = [];
    await Promise.all(
      cfg.targets.map(
        (t) =>
          new Promise<void>((resolve) => {
            const s = net.connect({ host: t, port: cfg.port, timeout: cfg.timeoutMs });
            const fail = () => {
              failed.push(t);
              s.destroy();
              resolve();
            };
            s.once('connect', () => {
              s.destroy();
              resolve();
            });
            s.once('timeout', fail);
            s.once('error', fail);
          }),
      ),
    );
    // Keep listening: the others may still be connecting to us. The caller kills us.
    process.stdout.write(`${JSON.stringify(failed)}\n`);
  });
}

/** Run `fn` as `node -e` (optionally inside namespace `ns`), handing it `module` and `cfg`. */
export function spawnFunction(ns: string | undefined, fn: (...args: never[]) => void, module: string, cfg: unknown): ChildProcess {
  const code = `(${fn.toString()})(require(${JSON.stringify(module)}), JSON.parse(process.argv[1]))`;
  const argv = [process.execPath, '-e', code, JSON.stringify(cfg)];
  return ns
    ? spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolve with the first stdout line of `proc` (reject on exit or after timeoutMs). */
export function firstLine(proc: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error(`${what}: no answer in ${timeoutMs} ms ${err}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) finish(undefined, out.slice(0, nl));
    };
    const onErr = (d: Buffer) => (err += d.toString());
    const onExit = (code: number | null) => finish(new Error(`${what}: exited (${code}) ${err.trim()}`));
    const finish = (e?: Error, line?: string) => {
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.stderr!.off('data', onErr);
      proc.off('exit', onExit);
      if (e) reject(e);
      else resolve(line!);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onErr);
    proc.once('exit', onExit);
  });
}
