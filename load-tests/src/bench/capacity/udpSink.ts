import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

/**
 * The viewers' receiving end: one UDP socket per viewer, read by a small C program.
 *
 * Why C: at the rates this benchmark reaches (tens of thousands of datagrams per second),
 * Node's dgram costs ~7–9 µs of CPU per datagram on this kind of machine, about as much as
 * the SFU spends forwarding it, so Node sinks would saturate their core before the SFU does.
 * This program waits with epoll and drains each socket with recvmmsg into 64-byte buffers
 * (only the RTP header is needed), ~1–2 µs per datagram.
 *
 * What it counts: SRTP leaves the RTP header in the clear, so each socket's sequence numbers
 * are read without decrypting. Per socket it keeps packets received and packets expected
 * (extended highest sequence number − first + 1, RFC 3550 A.1, where a jump of more than
 * 3000 is a source restart and not loss). RTCP/SRTCP (second byte 192–223) is skipped.
 *
 * Protocol (one line each way): `open N` → `P port…`; `snap` → `S rtcp jumps r0 e0 r1 e1 …`
 * (cumulative, one pair per socket in opening order); `quit`. It exits on stdin EOF (the
 * parent went away) and at its deadline (argv[1], seconds) whatever happens.
 */
const SINK_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define MAX_SOCKS 8192
#define BATCH 32
#define HDR 64
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100

typedef struct {
  int fd, have;
  uint16_t max_seq;
  uint64_t cycles, base, received, skipped;
} sock_t;

static sock_t socks[MAX_SOCKS];
static int nsocks = 0, ep;
static uint64_t rtcp = 0, jumps = 0;
static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH];
static uint8_t bufs[BATCH][HDR];
static char out[MAX_SOCKS * 48 + 128];

static void on_packet(sock_t *s, const uint8_t *p, int len) {
  if (len < 12 || (p[0] >> 6) != 2) return;
  if (p[1] >= 192 && p[1] <= 223) { rtcp++; return; }
  uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
  s->received++;
  if (!s->have) { s->have = 1; s->max_seq = seq; s->base = seq; s->cycles = 0; return; }
  uint16_t d = (uint16_t)(seq - s->max_seq);
  if (d == 0) return;
  if (d < MAX_DROPOUT) {
    if (seq < s->max_seq) s->cycles += 65536;
    s->max_seq = seq;
  } else if (d <= 65536 - MAX_MISORDER) {
    jumps++;
    s->skipped += d - 1;
    if (seq < s->max_seq) s->cycles += 65536;
    s->max_seq = seq;
  }
}

static uint64_t expected(const sock_t *s) {
  if (!s->have) return 0;
  return s->cycles + s->max_seq - s->base + 1 - s->skipped;
}

static void drain(sock_t *s) {
  for (int round = 0; round < 64; round++) {
    int n = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) on_packet(s, bufs[i], (int)msgs[i].msg_len);
    if (n < BATCH) return;
  }
}

static void cmd_open(int n) {
  int len = snprintf(out, sizeof out, "P");
  for (int i = 0; i < n; i++) {
    if (nsocks >= MAX_SOCKS) { printf("E too many sockets\n"); fflush(stdout); return; }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); a.sin_port = 0;
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
      printf("E socket: %s\n", strerror(errno)); fflush(stdout); if (fd >= 0) close(fd); return;
    }
    struct epoll_event ev; ev.events = EPOLLIN; ev.data.u32 = (uint32_t)nsocks;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    memset(&socks[nsocks], 0, sizeof socks[nsocks]);
    socks[nsocks++].fd = fd;
    len += snprintf(out + len, sizeof out - len, " %u", ntohs(a.sin_port));
  }
  printf("%s\n", out); fflush(stdout);
}

static void cmd_snap(void) {
  int len = snprintf(out, sizeof out, "S %llu %llu", (unsigned long long)rtcp, (unsigned long long)jumps);
  for (int i = 0; i < nsocks; i++)
    len += snprintf(out + len, sizeof out - len, " %llu %llu", (unsigned long long)socks[i].received, (unsigned long long)expected(&socks[i]));
  printf("%s\n", out); fflush(stdout);
}

int main(int argc, char **argv) {
  alarm(argc > 1 ? (unsigned)atoi(argv[1]) : 900);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = bufs[i]; iovs[i].iov_len = HDR;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iovs[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event sev; sev.events = EPOLLIN; sev.data.u32 = 0xffffffffu;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  char line[256]; int ll = 0;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      uint32_t id = evs[i].data.u32;
      if (id != 0xffffffffu) { drain(&socks[id]); continue; }
      char c[256];
      ssize_t r = read(0, c, sizeof c);
      if (r <= 0) return 0;
      for (ssize_t k = 0; k < r; k++) {
        if (c[k] != '\n') { if (ll < 255) line[ll++] = c[k]; continue; }
        line[ll] = 0; ll = 0;
        if (strncmp(line, "open ", 5) == 0) cmd_open(atoi(line + 5));
        else if (strcmp(line, "snap") == 0) cmd_snap();
        else if (strcmp(line, "quit") == 0) return 0;
      }
    }
  }
}
`;

/** Writes the sink's source into `dir` and compiles it with the system C compiler. */
export async function buildSink(dir: string): Promise<string> {
  const src = path.join(dir, 'udpsink.c');
  const bin = path.join(dir, 'udpsink');
  writeFileSync(src, SINK_C);
  await new Promise<void>((resolve, reject) => {
    execFile('cc', ['-O2', '-o', bin, src], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`cannot compile the UDP sink with cc (build-essential): ${err.message} ${stderr}`.trim()));
      else resolve();
    });
  });
  return bin;
}

/** Cumulative counters of every socket of a pool, in opening order. */
export interface SinkSnapshot {
  received: number[];
  expected: number[];
  /** RTCP/SRTCP packets seen, all sockets. */
  rtcp: number;
  /** Sequence jumps treated as source restarts (not loss). */
  jumps: number;
}

/** One sink process: a line-oriented request/response channel over its stdio. */
class SinkProcess {
  readonly proc: ChildProcess;
  #waiter: ((line: string) => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #exited = false;
  sockets = 0;

  constructor(bin: string, core: number, deadlineSec: number) {
    this.proc = spawn('taskset', ['-c', String(core), bin, String(deadlineSec)], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.proc.on('exit', () => {
      this.#exited = true;
      this.#waiter?.('E sink exited');
    });
    this.proc.on('error', () => {
      this.#exited = true;
      this.#waiter?.('E cannot start sink');
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      // The sink only ever answers a request; a line nobody waits for (after a timeout) is dropped.
      this.#waiter?.(line);
    });
  }

  request(command: string, timeoutMs = 10_000): Promise<string> {
    const run = () =>
      new Promise<string>((resolve, reject) => {
        if (this.#exited) return reject(new Error('UDP sink process is gone'));
        const timer = setTimeout(() => {
          this.#waiter = undefined;
          reject(new Error(`UDP sink did not answer '${command}' in ${timeoutMs} ms`));
        }, timeoutMs);
        this.#waiter = (line) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          if (line.startsWith('E ')) reject(new Error(`UDP sink: ${line.slice(2)}`));
          else resolve(line);
        };
        this.proc.stdin!.write(`${command}\n`);
      });
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  close(): void {
    if (this.#exited) return;
    this.proc.stdin!.end('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    t.unref();
    this.proc.once('exit', () => clearTimeout(t));
  }
}

export interface UdpSinkPoolOptions {
  /** The compiled sink (buildSink). */
  bin: string;
  /** Core the sink processes are pinned to. */
  core: number;
  /** Sockets per process before another process starts. */
  socketsPerProcess: number;
  /** Each sink process exits by itself after this long. */
  deadlineSec: number;
}

/** Sink processes pinned to one core, opening sockets on demand. */
export class UdpSinkPool {
  readonly #o: UdpSinkPoolOptions;
  readonly #procs: SinkProcess[] = [];
  readonly #ports: number[] = [];
  #closed = false;

  constructor(options: UdpSinkPoolOptions) {
    this.#o = options;
  }

  /** Every socket's port, in opening order. */
  get ports(): readonly number[] {
    return this.#ports;
  }

  get pids(): number[] {
    return this.#procs.map((p) => p.proc.pid!).filter(Boolean);
  }

  /** Opens `n` more sockets; resolves with their ports. */
  async open(n: number): Promise<number[]> {
    if (this.#closed) throw new Error('sink pool is closed');
    const opened: number[] = [];
    while (opened.length < n) {
      let proc = this.#procs[this.#procs.length - 1];
      if (!proc || proc.sockets >= this.#o.socketsPerProcess) {
        proc = new SinkProcess(this.#o.bin, this.#o.core, this.#o.deadlineSec);
        this.#procs.push(proc);
      }
      const k = Math.min(n - opened.length, this.#o.socketsPerProcess - proc.sockets);
      const line = await proc.request(`open ${k}`);
      const ports = line.split(' ').slice(1).map(Number);
      if (ports.length !== k) throw new Error(`UDP sink opened ${ports.length} of ${k} sockets`);
      proc.sockets += k;
      opened.push(...ports);
    }
    this.#ports.push(...opened);
    return opened;
  }

  /** All sockets' cumulative counters; the processes are asked at (nearly) the same moment. */
  async snapshot(): Promise<SinkSnapshot> {
    const lines = await Promise.all(this.#procs.map((p) => p.request('snap')));
    const snap: SinkSnapshot = { received: [], expected: [], rtcp: 0, jumps: 0 };
    for (const line of lines) {
      const v = line.split(' ').slice(1).map(Number);
      snap.rtcp += v[0]!;
      snap.jumps += v[1]!;
      for (let i = 2; i + 1 < v.length; i += 2) {
        snap.received.push(v[i]!);
        snap.expected.push(v[i + 1]!);
      }
    }
    return snap;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#procs) p.close();
  }
}
