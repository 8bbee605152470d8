/**
 * A TLS reverse proxy in front of a Cascade origin, as every real deployment has one: Debian's
 * nginx with a self-signed certificate made by openssl at start, proxying HTTP and WebSocket
 * upgrades to `upstream`. Its prefix, configuration, certificate, logs and temp files live in
 * a private directory removed by stop(); nothing of the system's nginx (/etc/nginx, its service)
 * is used. Browsers need `--ignore-certificate-errors`; Node clients `rejectUnauthorized: false`
 * or the `certPath` as a CA.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);

export interface TlsProxyOptions {
  /** Where to send requests, e.g. http://10.1.2.1:8080 (the origin). */
  upstream: string;
  /** Address to listen on (and the certificate's subjectAltName). Default 127.0.0.1. */
  host?: string;
  /** Port to listen on. Default: a free one. */
  port?: number;
  /** Run nginx inside this network namespace (then `host` must be an address of it). */
  netns?: string;
  /** Extra names for the certificate (DNS names), e.g. live.example.test. */
  dnsNames?: string[];
}

export interface TlsProxy {
  /** https://host:port */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The self-signed certificate (PEM). */
  readonly certPath: string;
  /** nginx's error log lines so far (for failure messages). */
  errorLog(): Promise<string>;
  /** Stop nginx and remove its directory. Idempotent; also runs at process exit. */
  stop(): Promise<void>;
}

async function nginxBinary(): Promise<string> {
  for (const p of ['/usr/sbin/nginx', 'nginx']) {
    try {
      await execFileP(p, ['-v'], { timeout: 5000 });
      return p;
    } catch {
      // next
    }
  }
  throw new Error('nginx is not installed (scripts/setup.sh test installs it)');
}

function portOpen(host: string, port: number, netns?: string): Promise<boolean> {
  if (netns) {
    const code = `const s=require('net').connect(${port},${JSON.stringify(host)},()=>process.exit(0));s.on('error',()=>process.exit(1))`;
    return execFileP('ip', ['netns', 'exec', netns, process.execPath, '-e', code], { timeout: 5000 }).then(
      () => true,
      () => false,
    );
  }
  return new Promise((resolve) => {
    const s = connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Start nginx as a TLS reverse proxy to `upstream` (see the file comment); resolves once it accepts connections. */
export async function startTlsProxy(options: TlsProxyOptions): Promise<TlsProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:') throw new TypeError('upstream must be an http:// URL');
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  const nginx = await nginxBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'cascade-tls-proxy-'));
  // nginx's workers drop root for `nobody`: they must be able to write their temp files.
  chmodSync(dir, 0o755);
  for (const d of ['temp', 'logs']) {
    mkdirSync(path.join(dir, d));
    chmodSync(path.join(dir, d), 0o777);
  }
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const isIp = /^[\d.]+$|:/.test(host);
  const san = [isIp ? `IP:${host}` : `DNS:${host}`, ...(options.dnsNames ?? []).map((n) => `DNS:${n}`)].join(',');
  await execFileP(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=cascade-test-proxy', '-addext', `subjectAltName=${san}`, '-keyout', keyPath, '-out', certPath],
    { timeout: 20_000 },
  );
  const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `# Written by testing/src/tlsProxy.ts
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen ${listen} ssl;
    ssl_certificate ${certPath};
    ssl_certificate_key ${keyPath};
    location / {
      proxy_pass ${upstream.origin};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`,
  );
  // -e: the startup error log, before the configuration's error_log applies (else /var/log/nginx).
  const argv = [nginx, '-p', dir, '-e', `${dir}/logs/startup.log`, '-c', conf];
  const proc: ChildProcess = options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let stopped = false;
  const killSync = () => proc.kill('SIGKILL');
  process.once('exit', killSync);
  const readLog = async () => {
    const { readFile } = await import('node:fs/promises');
    const parts = await Promise.all(['startup.log', 'error.log'].map((f) => readFile(path.join(dir, 'logs', f), 'utf8').catch(() => '')));
    return parts.join('') + output;
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killSync);
    if (proc.exitCode === null && proc.signalCode === null) {
      // SIGQUIT: graceful; the master takes its worker with it.
      proc.kill('SIGQUIT');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let dead = false;
    void exited.then(() => (dead = true));
    await waitFor(
      async () => {
        if (dead) throw new Error(`nginx exited: ${await readLog()}`);
        return portOpen(host, port, options.netns);
      },
      { timeoutMs: 20_000, what: `nginx on ${listen}`, intervalMs: 100 },
    );
  } catch (err) {
    const log = await readLog();
    await stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  return {
    url: `https://${listen}`,
    host,
    port,
    certPath,
    errorLog: readLog,
    stop,
  };
}
