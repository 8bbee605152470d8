import type { types } from 'mediasoup';

/**
 * What Cascade keeps on mediasoup objects' `appData`, typed through mediasoup's generics
 * (`Router<RouterData>`, `Transport<ClientTransportData>`, …) rather than cast where it is read.
 * mediasoup's AppData is an index type, hence type aliases here, not interfaces.
 */

/** A router of one stream (StreamRouter creates every one). */
export type RouterData = {
  /** The worker it lives on: spreading load, and piping within one worker by hand. */
  worker: types.Worker;
  streamId: string;
  /** Producers piped here from the primary router, by source producer id: the id to consume. */
  piped: Map<string, Promise<string>>;
  /** The stream's digest channel piped here (IntegrityChannel), by data producer id. */
  pipedData?: Map<string, Promise<void>>;
  /** The pipe pair from the primary router when both share one worker (made on first use). */
  pipePair?: Promise<{ from: types.PipeTransport; to: types.PipeTransport }>;
};

export type StreamRouterHandle = types.Router<RouterData>;

/** A transport a client session owns (WebRTC for browsers and WHIP/WHEP, plain RTP for ingest). */
export type ClientTransportData = {
  direction: 'send' | 'recv';
  router: StreamRouterHandle;
  /** transport.connect in progress / done (a second call is refused). */
  connecting?: boolean;
  connected?: boolean;
  /** Subscribed to the stream's digest channel. */
  integrity?: boolean;
  /** Media kinds produced on it (one producer per kind). */
  kinds?: Set<string>;
};

export type ClientWebRtcTransport = types.WebRtcTransport<ClientTransportData>;
export type ClientTransport = ClientWebRtcTransport | types.PlainTransport<ClientTransportData>;

/**
 * What TrafficMeter reads on any transport a worker creates: it counts client traffic per
 * stream, and leaves out Cascade's own plumbing (`internal`). Every field is optional because
 * the meter sees every transport, Cascade's and mediasoup's own pipes alike.
 */
export type MeteredTransportData = {
  internal?: boolean;
  streamId?: string;
  router?: StreamRouterHandle;
};

/** A producer that stands for another (a layered copy of the broadcaster's): the one it copies. */
export type ProducerData = {
  upstream?: types.Producer;
  layered?: boolean;
  layer?: number;
};

/** A WebRTC transport (ICE, DTLS, SCTP) rather than a plain RTP one. */
export function isWebRtc(t: ClientTransport): t is ClientWebRtcTransport {
  return 'iceParameters' in t;
}
