import type { types } from 'mediasoup';

/**
 * The one shape of a pipe between two nodes of a stream (parent to child relay, and the
 * origin's integrity probe through a relay): SRTP because it crosses the open internet, RTX for
 * NACK repair, and SCTP because the stream's digest channel travels on it next to the media.
 */
export function pipeTransportOptions(listen: { ip: string; announcedIp?: string | undefined }, appData?: Record<string, unknown>): types.PipeTransportOptions {
  return {
    listenIp: { ip: listen.ip, ...(listen.announcedIp ? { announcedIp: listen.announcedIp } : {}) },
    enableSrtp: true,
    enableRtx: true,
    enableSctp: true,
    numSctpStreams: { OS: 16, MIS: 16 },
    maxSctpMessageSize: 256 * 1024,
    ...(appData ? { appData } : {}),
  };
}
