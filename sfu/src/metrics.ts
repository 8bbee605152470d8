import type { types } from 'mediasoup';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { NodeRequests, type ErrorCode } from '@cascade/protocol';
import type { GuardedHttpServer } from '@cascade/protocol/node';
import type { MediaNode } from './MediaNode.js';
import type { TrafficMeter } from './TrafficMeter.js';
import type { OriginIntegrity } from './integrity/OriginIntegrity.js';

/**
 * Prometheus metrics of a media node, driven by observer events and computed at scrape
 * time; the media classes never import prom-client. Labels are bounded: error codes and
 * message types come from fixed lists, never from ids.
 */
export function registerNodeMetrics(registry: Registry, node: MediaNode, meter: TrafficMeter): void {
  const live = { transports: 0, producers: 0, consumers: 0 };
  node.observer.on('newtransport', (t: types.Transport) => {
    live.transports++;
    t.observer.once('close', () => live.transports--);
    t.observer.on('newproducer', (p) => {
      live.producers++;
      p.observer.once('close', () => live.producers--);
    });
    t.observer.on('newconsumer', (c) => {
      live.consumers++;
      c.observer.once('close', () => live.consumers--);
    });
  });

  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge('cascade_media_workers', 'Live mediasoup workers', () => node.pool.workers.length);
  gauge('cascade_media_routers', 'mediasoup routers', () => node.streams.reduce((n, s) => n + s.router.routers.length, 0));
  gauge('cascade_media_transports', 'mediasoup transports (WebRTC and pipe)', () => live.transports);
  gauge('cascade_media_producers', 'mediasoup producers', () => live.producers);
  gauge('cascade_media_consumers', 'mediasoup consumers (viewer and pipe)', () => live.consumers);
  gauge('cascade_node_streams', 'Streams carried by this node', () => node.streams.length);
  gauge('cascade_node_viewers', 'Viewer sessions on this node', () => node.streams.reduce((n, s) => n + s.viewerCount, 0));
  gauge('cascade_node_children', 'Child relays fed by this node', () => node.streams.reduce((n, s) => n + s.childCount, 0));
  gauge('cascade_signal_connections', 'Open signalling connections', () => node.connectionCount);
  gauge('cascade_node_cpu_cores', 'CPU used by this process and its workers, in cores', () => meter.latest.cpu);
  gauge('cascade_node_bitrate_out_kbps', 'Media sent, kbit/s, last period', () => meter.latest.bitrateOutKbps);
  gauge('cascade_node_bitrate_in_kbps', 'Media received, kbit/s, last period', () => meter.latest.bitrateInKbps);

  const monotonic = (name: string, help: string, value: () => number) => {
    let last = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const v = value();
        if (v > last) this.inc(v - last);
        last = Math.max(last, v);
      },
    });
  };
  monotonic('cascade_media_bytes_received_total', 'Bytes received by all transports', () => meter.latest.bytesIn);
  monotonic('cascade_media_bytes_sent_total', 'Bytes sent by all transports', () => meter.latest.bytesOut);

  const workerDeaths = new Counter({ name: 'cascade_media_worker_deaths_total', help: 'mediasoup workers that died', registers: [registry] });
  node.on('workerdied', () => workerDeaths.inc());

  const errors = new Counter({
    name: 'cascade_signal_errors_total',
    help: 'Signalling requests and messages refused, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const known = new Set(Object.keys(NodeRequests));
  const duration = new Histogram({
    name: 'cascade_signal_request_duration_seconds',
    help: 'Signalling request handling time',
    labelNames: ['type'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const timeouts = new Counter({
    name: 'cascade_signal_timeouts_total',
    help: 'Signalling sessions closed for sending no request in time (first) or holding nothing in time (idle)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  node.observer.on('newsession', (session) => {
    session.on('timeout', (kind) => timeouts.inc({ kind }));
    session.peer.on('protocolerror', (err) => errors.inc({ code: err.code satisfies ErrorCode }));
    session.peer.on('handled', (type, ms, err) => {
      if (known.has(type)) duration.observe({ type }, ms / 1000);
      if (err && err.code !== 'CASCADE_ERR_PROTOCOL_INVALID_PARAMS') errors.inc({ code: err.code });
    });
  });
}

/** Metrics of the HTTP server's own limits: open connections, refusals, deadlines missed. */
export function registerHttpMetrics(registry: Registry, http: GuardedHttpServer): void {
  new Gauge({
    name: 'cascade_http_connections',
    help: 'Open TCP connections to the HTTP server (WebSockets included)',
    registers: [registry],
    collect() {
      this.set(http.connections);
    },
  });
  const refused = new Counter({
    name: 'cascade_http_connections_refused_total',
    help: 'TCP connections refused at once, by reason (per_address: http.maxConnectionsPerAddress)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  http.observer.on('refused', (reason) => refused.inc({ reason }));
  const clientErrors = new Counter({
    name: 'cascade_http_client_errors_total',
    help: 'HTTP clients disconnected for a request not received in time (timeout) or malformed',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  http.observer.on('clienterror', (kind) => clientErrors.inc({ kind }));
}

/** The origin's signing: batches and their bytes (what every viewer of a stream receives too). */
export function registerIntegrityMetrics(registry: Registry, integrity: OriginIntegrity): void {
  const batches = new Counter({ name: 'cascade_integrity_batches_total', help: 'Signed digest batches sent, all streams', registers: [registry] });
  const bytes = new Counter({ name: 'cascade_integrity_batch_bytes_total', help: 'Bytes of signed digest batches sent (per stream; each viewer receives them)', registers: [registry] });
  const digests = new Counter({ name: 'cascade_integrity_digests_total', help: 'Frame digests sent (each twice: in its batch and the next)', registers: [registry] });
  integrity.observer.on('newdigester', (d) =>
    d.observer.on('batch', (n, count) => {
      batches.inc();
      bytes.inc(n);
      digests.inc(count);
    }),
  );
}
