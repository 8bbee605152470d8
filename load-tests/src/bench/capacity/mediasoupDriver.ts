/**
 * Child process that drives one mediasoup worker for the capacity benchmark (forked by
 * MediasoupTarget). The parent pins this process to the load core and the worker it spawns
 * to the SFU core, so the worker's CPU is the forwarding cost and nothing else.
 *
 * One router, one PlainTransport producer fed by ffmpeg (rtcpMux false, comedia), and per
 * viewer one PlainTransport (SRTP AES_CM_128_HMAC_SHA1_80 unless told otherwise) connected
 * to a sink port with one consumer on it. It exits when the parent goes away and at its deadline.
 */
import type * as Mediasoup from 'mediasoup';
import { INGRESS_PT, INGRESS_SSRC, srtpKeyForPort } from './SfuTarget.js';

export type DriverRequest =
  | { type: 'start'; workerBin: string; deadlineSec: number; srtp: boolean }
  | { type: 'add'; id: number; ports: number[] }
  | { type: 'close' };

export type DriverReply =
  | { type: 'ready'; workerPid: number; port: number; rtcpPort: number; version: string }
  | { type: 'added'; id: number }
  | { type: 'error'; id?: number; message: string };

/** Requests in flight to the worker while adding viewers. */
const ADD_CONCURRENCY = 20;
const SUITE = 'AES_CM_128_HMAC_SHA1_80' as const;

let worker: Mediasoup.types.Worker | undefined;
let router: Mediasoup.types.Router | undefined;
let producer: Mediasoup.types.Producer | undefined;
let consumerCaps: Mediasoup.types.RtpCapabilities | undefined;
let srtp = true;

function reply(msg: DriverReply): void {
  if (process.connected) process.send!(msg);
}

function shutdown(code: number): never {
  try {
    worker?.close();
  } catch {
    // exiting anyway
  }
  process.exit(code);
}

async function start(workerBin: string, deadlineSec: number, withSrtp: boolean): Promise<void> {
  srtp = withSrtp;
  setTimeout(() => shutdown(3), deadlineSec * 1000).unref();
  // mediasoup reads MEDIASOUP_WORKER_BIN once, when its Worker module loads.
  process.env.MEDIASOUP_WORKER_BIN = workerBin;
  const ms = await import('mediasoup');
  worker = await ms.createWorker({ logLevel: 'error' });
  worker.on('died', () => {
    reply({ type: 'error', message: 'mediasoup worker died' });
    shutdown(2);
  });
  router = await worker.createRouter({ mediaCodecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }] });
  const ingress = await router.createPlainTransport({ listenIp: { ip: '127.0.0.1' }, rtcpMux: false, comedia: true });
  producer = await ingress.produce({
    kind: 'video',
    rtpParameters: {
      codecs: [{ mimeType: 'video/VP8', payloadType: INGRESS_PT, clockRate: 90000 }],
      encodings: [{ ssrc: INGRESS_SSRC }],
    },
  });
  // VP8 only, without header extensions or RTCP feedback: the consumer then forwards like
  // Janus's rtp_forward does (no NACK retransmission buffer, no per-packet extensions).
  const vp8 = router.rtpCapabilities.codecs!.find((c) => c.mimeType.toLowerCase() === 'video/vp8')!;
  consumerCaps = { codecs: [{ ...vp8, rtcpFeedback: [] }], headerExtensions: [] };
  reply({
    type: 'ready',
    workerPid: worker.pid,
    port: ingress.tuple.localPort,
    rtcpPort: ingress.rtcpTuple!.localPort,
    version: ms.version,
  });
}

async function addOne(port: number): Promise<void> {
  const t = await router!.createPlainTransport({
    listenIp: { ip: '127.0.0.1' },
    rtcpMux: true,
    comedia: false,
    enableSrtp: srtp,
    ...(srtp ? { srtpCryptoSuite: SUITE } : {}),
  });
  // The key given here decrypts what the sink would send; the transport encrypts with its own random key.
  await t.connect({ ip: '127.0.0.1', port, ...(srtp ? { srtpParameters: { cryptoSuite: SUITE, keyBase64: srtpKeyForPort(port) } } : {}) });
  await t.consume({ producerId: producer!.id, rtpCapabilities: consumerCaps! });
}

async function add(ports: number[]): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < ports.length) await addOne(ports[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(ADD_CONCURRENCY, ports.length) }, lane));
}

process.on('disconnect', () => shutdown(0));
process.on('message', (m: DriverRequest) => {
  if (m.type === 'start') {
    start(m.workerBin, m.deadlineSec, m.srtp).catch((err: Error) => reply({ type: 'error', message: err.message }));
  } else if (m.type === 'add') {
    add(m.ports).then(
      () => reply({ type: 'added', id: m.id }),
      (err: Error) => reply({ type: 'error', id: m.id, message: err.message }),
    );
  } else if (m.type === 'close') {
    shutdown(0);
  }
});
